import assert from 'node:assert/strict';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { Spool } from '../../../src/spool/spool.js';
import { ManualClock } from '../../../src/util/clock.js';
import { silentLogger } from '../../../src/util/logger.js';
import { tempDir } from './helpers.js';

async function filesIn(dir: string): Promise<string[]> {
  return [...(await readdir(join(dir, 'tmp'))), ...(await readdir(join(dir, 'queue')))];
}

describe('discarding a message', () => {
  test('leaves nothing behind and can be called twice', async () => {
    const dir = await tempDir();
    const spool = await Spool.open({ dir, logger: silentLogger(), clock: new ManualClock() });
    const incoming = await spool.createIncoming();
    await incoming.write(Buffer.from('Subject: x\r\n\r\n'));
    assert.notDeepEqual(await filesIn(dir), []);

    await incoming.discard();
    await incoming.discard();
    assert.deepEqual(await filesIn(dir), []);
    assert.deepEqual(spool.list(), []);
  });

  test('makes further writes and the commit fail', async () => {
    const dir = await tempDir();
    const spool = await Spool.open({ dir, logger: silentLogger(), clock: new ManualClock() });
    const incoming = await spool.createIncoming();
    await incoming.discard();
    await assert.rejects(incoming.write(Buffer.from('late')));
    await assert.rejects(incoming.commit({ sender: 'a@example.com', recipients: ['b@example.net'] }));
    assert.deepEqual(await filesIn(dir), []);
  });

  test('after a commit does nothing: the message stays queued', async () => {
    const dir = await tempDir();
    const spool = await Spool.open({ dir, logger: silentLogger(), clock: new ManualClock() });
    const incoming = await spool.createIncoming();
    await incoming.commit({ sender: 'a@example.com', recipients: ['b@example.net'] });
    await incoming.discard();
    assert.equal(spool.list().length, 1);
    assert.equal((await readdir(join(dir, 'queue'))).length, 2);
  });
});
