import assert from 'node:assert/strict';
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { Spool } from '../../../src/spool/spool.js';
import { createQueueId } from '../../../src/spool/queueId.js';
import { ManualClock } from '../../../src/util/clock.js';
import { silentLogger } from '../../../src/util/logger.js';
import { tempDir } from './helpers.js';

async function committedMessage(dir: string, body = 'Subject: x\r\n\r\nbody\r\n') {
  const spool = await Spool.open({ dir, logger: silentLogger(), clock: new ManualClock() });
  const incoming = await spool.createIncoming();
  await incoming.write(Buffer.from(body));
  return incoming.commit({ sender: 'a@example.com', recipients: ['b@example.net'] });
}

describe('opening a spool after a crash', () => {
  test('removes leftover temp files of messages that were never committed', async () => {
    const dir = await tempDir();
    const spool = await Spool.open({ dir, logger: silentLogger(), clock: new ManualClock() });
    const unfinished = await spool.createIncoming();
    await unfinished.write(Buffer.from('half a message'));
    await writeFile(join(dir, 'tmp', 'something.json'), '{');
    await mkdir(join(dir, 'tmp', 'a-directory'));

    const reopened = await Spool.open({ dir, logger: silentLogger(), clock: new ManualClock() });
    assert.deepEqual(await readdir(join(dir, 'tmp')), []);
    assert.deepEqual(reopened.list(), []);
  });

  test('removes a message file whose envelope was never written (crash between the renames)', async () => {
    const dir = await tempDir();
    const kept = await committedMessage(dir);
    const orphan = createQueueId(new ManualClock());
    await writeFile(join(dir, 'queue', `${orphan}.eml`), 'Subject: orphan\r\n\r\n');

    const spool = await Spool.open({ dir, logger: silentLogger(), clock: new ManualClock() });
    assert.deepEqual(spool.list().map((e) => e.id), [kept.id]);
    assert.deepEqual((await readdir(join(dir, 'queue'))).sort(), [`${kept.id}.eml`, `${kept.id}.json`]);
  });

  test('moves a corrupt envelope and its message aside instead of failing', async () => {
    const dir = await tempDir();
    const good = await committedMessage(dir);
    const bad = await committedMessage(dir);
    await writeFile(join(dir, 'queue', `${bad.id}.json`), '{"version": 1, "id": "trunc');

    const spool = await Spool.open({ dir, logger: silentLogger(), clock: new ManualClock() });
    assert.deepEqual(spool.list().map((e) => e.id), [good.id]);
    assert.deepEqual((await readdir(join(dir, 'corrupt'))).sort(), [`${bad.id}.eml`, `${bad.id}.json`]);
    assert.deepEqual((await readdir(join(dir, 'queue'))).sort(), [`${good.id}.eml`, `${good.id}.json`]);
  });

  test('moves aside an envelope that is valid JSON but not an envelope', async () => {
    const dir = await tempDir();
    const bad = await committedMessage(dir);
    await writeFile(join(dir, 'queue', `${bad.id}.json`), JSON.stringify({ ...bad, recipients: 'b@example.net' }));

    const spool = await Spool.open({ dir, logger: silentLogger(), clock: new ManualClock() });
    assert.deepEqual(spool.list(), []);
    assert.deepEqual((await readdir(join(dir, 'corrupt'))).sort(), [`${bad.id}.eml`, `${bad.id}.json`]);
  });

  test('moves aside an envelope whose message file was truncated', async () => {
    const dir = await tempDir();
    const bad = await committedMessage(dir, 'Subject: long\r\n\r\nthe whole body\r\n');
    await writeFile(join(dir, 'queue', `${bad.id}.eml`), 'Subject: lo');

    const spool = await Spool.open({ dir, logger: silentLogger(), clock: new ManualClock() });
    assert.deepEqual(spool.list(), []);
    assert.deepEqual((await readdir(join(dir, 'corrupt'))).sort(), [`${bad.id}.eml`, `${bad.id}.json`]);
  });

  test('moves aside an envelope whose message file is missing', async () => {
    const dir = await tempDir();
    const bad = await committedMessage(dir);
    const { unlink } = await import('node:fs/promises');
    await unlink(join(dir, 'queue', `${bad.id}.eml`));

    const spool = await Spool.open({ dir, logger: silentLogger(), clock: new ManualClock() });
    assert.deepEqual(spool.list(), []);
    assert.deepEqual(await readdir(join(dir, 'corrupt')), [`${bad.id}.json`]);
  });
});
