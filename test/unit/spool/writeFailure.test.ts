import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmod, mkdir, readdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { QueueIdGenerator } from '../../../src/spool/queueId.js';
import { Spool } from '../../../src/spool/spool.js';
import { isPosternError } from '../../../src/util/errors.js';
import { ManualClock } from '../../../src/util/clock.js';
import { silentLogger } from '../../../src/util/logger.js';
import { tempDir } from './helpers.js';

/*
 * How these tests force the disk to refuse a write. The tests usually run as root, where
 * chmod does not stop anything, so the portable cases swap a spool directory for a plain
 * file (every create or rename under it then fails with ENOTDIR, as on a broken volume).
 * A real "disk full" (ENOSPC) needs a tiny file system: where the test may mount a 64 KiB
 * tmpfs (root with CAP_SYS_ADMIN) it does; elsewhere that case is skipped. The chmod case
 * runs only when not root, where permissions do apply.
 */

const isRoot = process.getuid?.() === 0;
const META = { sender: 'a@example.com', recipients: ['b@example.net'] };

function isSpoolWriteFailure(err: unknown): boolean {
  return isPosternError(err, 'SPOOL_WRITE_FAILED');
}

async function replaceDirWithFile(path: string): Promise<void> {
  await rm(path, { recursive: true, force: true });
  await writeFile(path, 'not a directory');
}

describe('a spool the disk refuses to write to', () => {
  test('rejects the commit with SPOOL_WRITE_FAILED and leaves no half message when the queue directory is unusable', async () => {
    const dir = await tempDir();
    const spool = await Spool.open({ dir, logger: silentLogger(), clock: new ManualClock() });
    const incoming = await spool.createIncoming();
    await incoming.write(Buffer.from('Subject: x\r\n\r\nbody\r\n'));
    await replaceDirWithFile(join(dir, 'queue'));

    await assert.rejects(incoming.commit(META), isSpoolWriteFailure);
    assert.deepEqual(await readdir(join(dir, 'tmp')), []);
    assert.deepEqual(spool.list(), []);
    await incoming.discard();
  });

  test('takes the message file back out of the queue when its envelope cannot be put in place', async () => {
    const dir = await tempDir();
    const clock = new ManualClock();
    const random = () => Buffer.from([1, 2, 3, 4]);
    const spool = await Spool.open({ dir, logger: silentLogger(), clock, random });
    const incoming = await spool.createIncoming();
    assert.equal(incoming.id, new QueueIdGenerator(clock, random).next());
    await incoming.write(Buffer.from('Subject: x\r\n\r\nbody\r\n'));
    // A directory where the envelope goes makes the last rename, the commit point, fail.
    await mkdir(join(dir, 'queue', `${incoming.id}.json`));

    await assert.rejects(incoming.commit(META), isSpoolWriteFailure);
    assert.deepEqual(await readdir(join(dir, 'queue')), [`${incoming.id}.json`]);
    assert.deepEqual(await readdir(join(dir, 'tmp')), []);
    assert.deepEqual(spool.list(), []);
  });

  test('rejects a new message with SPOOL_WRITE_FAILED when its temp file cannot be created', async () => {
    const dir = await tempDir();
    const spool = await Spool.open({ dir, logger: silentLogger(), clock: new ManualClock() });
    await replaceDirWithFile(join(dir, 'tmp'));
    await assert.rejects(spool.createIncoming(), isSpoolWriteFailure);
  });

  test('rejects a write with SPOOL_WRITE_FAILED and removes the partial file when the disk is full', async (t) => {
    const dir = await tempDir();
    const mountPoint = join(dir, 'small');
    await mkdir(mountPoint);
    try {
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', mountPoint], { stdio: 'ignore' });
    } catch {
      t.skip('cannot mount a small tmpfs here (needs root with CAP_SYS_ADMIN)');
      return;
    }
    try {
      const spool = await Spool.open({ dir: mountPoint, logger: silentLogger(), clock: new ManualClock() });
      const incoming = await spool.createIncoming();
      const chunk = Buffer.alloc(16 * 1024, 0x61);
      let failure: unknown;
      for (let i = 0; i < 16 && failure === undefined; i++) {
        await incoming.write(chunk).catch((err: unknown) => {
          failure = err;
        });
      }
      assert.ok(isSpoolWriteFailure(failure), `expected SPOOL_WRITE_FAILED, got ${String(failure)}`);
      assert.deepEqual(await readdir(join(mountPoint, 'tmp')), []);
      await assert.rejects(incoming.commit(META), isSpoolWriteFailure);
      await incoming.discard();
      assert.deepEqual(spool.list(), []);
    } finally {
      execFileSync('umount', [mountPoint], { stdio: 'ignore' });
    }
  });

  test('rejects a new message with SPOOL_WRITE_FAILED in a read-only directory', { skip: isRoot && 'chmod does not restrict root' }, async () => {
    const dir = await tempDir();
    const spool = await Spool.open({ dir, logger: silentLogger(), clock: new ManualClock() });
    await chmod(join(dir, 'tmp'), 0o500);
    try {
      await assert.rejects(spool.createIncoming(), isSpoolWriteFailure);
    } finally {
      await chmod(join(dir, 'tmp'), 0o700);
    }
  });

  test('refuses to open a spool whose directory cannot be created', async () => {
    const dir = await tempDir();
    await writeFile(join(dir, 'file'), '');
    await assert.rejects(Spool.open({ dir: join(dir, 'file', 'spool'), logger: silentLogger(), clock: new ManualClock() }), isSpoolWriteFailure);
  });
});
