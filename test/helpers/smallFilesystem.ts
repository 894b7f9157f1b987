import { execFile } from 'node:child_process';
import { mkdtemp, open, rm, rmdir, statfs } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface SmallFilesystem {
  path: string;
  /** Writes one file until the filesystem says ENOSPC: nothing more fits. Returns its path. */
  fill(): Promise<string>;
  /** Bytes still free for an unprivileged writer. */
  free(): Promise<number>;
  unmount(): Promise<void>;
}

/**
 * A real filesystem of `bytes` (tmpfs) for tests where the disk runs full: writes fail with
 * ENOSPC exactly as on a full volume. Mounting needs root (CAP_SYS_ADMIN), which the test
 * machines have; without it this fails, naming why, rather than letting the test pass untried.
 */
export async function mountSmallFilesystem(bytes: number): Promise<SmallFilesystem> {
  const path = await mkdtemp(join(tmpdir(), 'postern-small-fs-'));
  try {
    await run('mount', ['-t', 'tmpfs', '-o', `size=${bytes},mode=0700`, 'tmpfs', path]);
  } catch (err) {
    await rmdir(path).catch(() => undefined);
    throw new Error(`cannot mount a ${bytes}-byte tmpfs for the disk-full test (it needs root): ${(err as Error).message}`);
  }
  return {
    path,
    async fill() {
      const filler = join(path, 'filler');
      const handle = await open(filler, 'w');
      const block = Buffer.alloc(64 * 1024, 0x61);
      try {
        for (;;) await handle.write(block);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err;
      } finally {
        await handle.close();
      }
      return filler;
    },
    async free() {
      const stats = await statfs(path);
      return stats.bavail * stats.bsize;
    },
    async unmount() {
      // Lazy, so a file a stopping gateway still holds open cannot keep the mount (and the test) alive.
      await run('umount', ['-l', path]).catch(() => undefined);
      await rm(path, { recursive: true, force: true });
    },
  };
}
