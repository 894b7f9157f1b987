import { randomBytes } from 'node:crypto';
import { mkdir, open, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

/**
 * Writes `data` to `path` so that a reader (another replica, the file watcher, an operator's
 * `cat`) sees either the old file or the whole new one, never a half-written one: write a
 * temporary file in the same directory, flush it, then rename it over the target (rename is
 * atomic within one file system, POSIX rename(2)). Parent directories are created.
 *
 * The mode is set with chmod after creating the file because open()'s mode is filtered by
 * the process umask: a private key must end up 0600 whatever the umask, and a certificate
 * 0644 even under a strict umask such as 077.
 */
export async function writeFileAtomic(path: string, data: string | Buffer, mode: number): Promise<void> {
  const dir = dirname(path);
  await mkdir(dir, { recursive: true });
  const temp = join(dir, `.${basename(path)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
  try {
    // 'wx': never follow or reuse something already at the temporary name. Start at 0600 so the
    // contents are never readable by others, even for a moment, before the final chmod.
    const handle = await open(temp, 'wx', 0o600);
    try {
      await handle.writeFile(data);
      await handle.chmod(mode);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temp, path);
  } catch (err) {
    await rm(temp, { force: true });
    throw err;
  }
  await syncDirectory(dir);
}

/** Makes the rename itself durable across a crash; some platforms cannot open a directory, which is harmless. */
async function syncDirectory(dir: string): Promise<void> {
  let handle;
  try {
    handle = await open(dir, 'r');
    await handle.sync();
  } catch {
    // fsync on a directory is not supported everywhere (e.g. Windows); the data is still written.
  } finally {
    await handle?.close();
  }
}
