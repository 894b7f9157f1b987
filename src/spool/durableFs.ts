import { open, rename, unlink } from 'node:fs/promises';
import { fsyncDirectory } from '../util/atomicFile.js';

export { fsyncDirectory };

/**
 * The few file system steps a crash-safe store needs. A rename is atomic, but neither the
 * file's bytes nor the new directory entry survive a power cut until they are fsynced: the
 * data with the file, the name with its directory (see the rename(2) and fsync(2) notes on
 * ext4 data=ordered and "delayed allocation"). Postfix and Maildir rely on the same order.
 */

/** Write a new file and fsync it. Fails if `path` already exists ('wx'), never overwrites. */
export async function writeNewFileSynced(path: string, data: string | Buffer): Promise<void> {
  const handle = await open(path, 'wx', 0o600);
  try {
    await handle.writeFile(data);
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/**
 * Replace `path` atomically with `data`: write `tempPath`, fsync it, rename it over `path`,
 * fsync `path`'s directory (through `syncDirectory`, so fsyncs can be shared). A reader (or a restart) sees the old content or the new, never a
 * mix. `tempPath` must be on the same file system as `path`; it is removed on failure.
 */
export async function replaceFileAtomically(
  path: string,
  tempPath: string,
  data: string | Buffer,
  syncDirectory: () => Promise<void>,
): Promise<void> {
  try {
    await writeNewFileSynced(tempPath, data);
    await rename(tempPath, path);
  } catch (err) {
    await removeIfPresent(tempPath);
    throw err;
  }
  await syncDirectory();
}

/** unlink that treats "already gone" as success. */
export async function removeIfPresent(path: string): Promise<boolean> {
  try {
    await unlink(path);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw err;
  }
}

/** Best effort cleanup on an error path: the original error matters more than this one. */
export async function removeQuietly(path: string): Promise<void> {
  try {
    await removeIfPresent(path);
  } catch {
    // Left for the scan at the next open, which removes leftovers.
  }
}
