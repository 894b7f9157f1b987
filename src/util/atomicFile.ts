import { randomBytes } from 'node:crypto';
import { link, mkdir, open, rename, stat, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

/**
 * Crash-safe file writes. A rename is atomic, but neither the file's bytes nor the new
 * directory entry survive a power cut until they are fsynced: the data with the file, the
 * name with its directory (rename(2), fsync(2); ext4 "delayed allocation"). Postfix and
 * Maildir rely on the same order. Every file Postern writes for others to read (certificates,
 * the users file, spool envelopes) goes through here.
 */

export interface AtomicWriteOptions {
  /** Final file mode, applied with chmod so the umask cannot narrow or widen it. */
  mode: number;
  /** Fail with EEXIST instead of replacing a file that is already there (or appears meanwhile). */
  exclusive?: boolean;
  /**
   * When replacing a file owned by someone else (an operator running the CLI as root on the
   * gateway's file), give the new file the same owner so the gateway can still read it.
   */
  keepOwner?: boolean;
}

/**
 * Writes `data` to `path` so that a reader (the gateway's file watcher, another replica, an
 * operator's `cat`) sees the old file or the whole new one, never a half-written one: a
 * temporary file in the same directory, written and fsynced, renamed (or, exclusive, linked)
 * over the target, then the directory fsynced. Parent directories are created.
 */
export async function writeFileAtomic(path: string, data: string | Buffer, options: AtomicWriteOptions): Promise<void> {
  const dir = dirname(path);
  await mkdir(dir, { recursive: true });
  const temp = join(dir, `.${basename(path)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
  const previous = options.keepOwner ? await stat(path).catch(() => undefined) : undefined;
  try {
    // 'wx': never follow or reuse something already at the temporary name. Start at 0600 so the
    // contents are never readable by others, even for a moment, before the final chmod.
    const handle = await open(temp, 'wx', 0o600);
    try {
      await handle.writeFile(data);
      await handle.chmod(options.mode);
      if (previous && (previous.uid !== process.getuid?.() || previous.gid !== process.getgid?.())) {
        await handle.chown(previous.uid, previous.gid).catch(() => undefined);
      }
      await handle.sync();
    } finally {
      await handle.close();
    }
    if (options.exclusive) {
      await link(temp, path);
      await unlink(temp);
    } else {
      await rename(temp, path);
    }
  } catch (err) {
    await unlink(temp).catch(() => undefined);
    throw err;
  }
  await fsyncDirectory(dir);
}

/**
 * fsync a directory, so the names created, renamed or removed in it are on disk. A file
 * system that cannot fsync a directory at all (EINVAL, ENOTSUP) is tolerated; a real I/O
 * error is not.
 */
export async function fsyncDirectory(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'EINVAL' && code !== 'ENOTSUP' && code !== 'EISDIR') throw err;
  } finally {
    await handle.close();
  }
}
