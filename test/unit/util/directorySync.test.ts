import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { DirectorySync } from '../../../src/util/directorySync.js';

/** An fsync stand-in whose calls finish only when the test says so. */
function controlledFsync() {
  const calls: Array<() => void> = [];
  const fsync = () => new Promise<void>((resolve) => calls.push(resolve));
  return { fsync, calls };
}

describe('DirectorySync', () => {
  test('the first request starts an fsync at once', () => {
    const { fsync, calls } = controlledFsync();
    void new DirectorySync('/spool/queue', fsync).sync();
    assert.equal(calls.length, 1);
  });

  test('requests made while an fsync runs share one fsync that starts after it', async () => {
    const { fsync, calls } = controlledFsync();
    const sync = new DirectorySync('/spool/queue', fsync);
    const first = sync.sync();
    const waiting = [sync.sync(), sync.sync(), sync.sync()];
    assert.equal(calls.length, 1, 'no second fsync while the first runs');
    let settled = 0;
    for (const p of waiting) void p.then(() => settled++);
    calls[0]!();
    await first;
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(calls.length, 2, 'one more fsync for all three waiting requests');
    assert.equal(settled, 0, 'they are not answered by the fsync that began before they asked');
    calls[1]!();
    await Promise.all(waiting);
    assert.equal(settled, 3);
  });

  test('a failed fsync rejects its callers and the next request starts a new one', async () => {
    let fail = true;
    let count = 0;
    const sync = new DirectorySync('/spool/queue', async () => {
      count++;
      if (fail) throw new Error('EIO');
    });
    await assert.rejects(sync.sync(), /EIO/);
    fail = false;
    await sync.sync();
    assert.equal(count, 2);
  });
});
