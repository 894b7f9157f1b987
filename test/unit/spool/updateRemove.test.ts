import assert from 'node:assert/strict';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { Spool } from '../../../src/spool/spool.js';
import { ManualClock } from '../../../src/util/clock.js';
import { isPosternError } from '../../../src/util/errors.js';
import { silentLogger } from '../../../src/util/logger.js';
import { tempDir } from './helpers.js';

async function spoolWithMessage() {
  const dir = await tempDir();
  const clock = new ManualClock();
  const spool = await Spool.open({ dir, logger: silentLogger(), clock });
  const incoming = await spool.createIncoming();
  await incoming.write(Buffer.from('Subject: x\r\n\r\nbody\r\n'));
  const envelope = await incoming.commit({ sender: 'a@example.com', recipients: ['b@example.net', 'c@example.net'] });
  return { dir, clock, spool, envelope };
}

describe('updating and removing queued messages', () => {
  test('an update is on disk: a re-opened spool sees the new delivery state', async () => {
    const { dir, spool, envelope } = await spoolWithMessage();
    envelope.recipients[0] = { ...envelope.recipients[0]!, status: 'delivered', attempts: 1, lastReply: '250 ok', lastAttemptAt: 5 };
    envelope.attempts = 1;
    envelope.nextAttemptAt = envelope.receivedAt + 60_000;
    await spool.update(envelope);

    assert.deepEqual(spool.get(envelope.id), envelope);
    const reopened = await Spool.open({ dir, logger: silentLogger(), clock: new ManualClock() });
    assert.deepEqual(reopened.get(envelope.id), envelope);
    assert.deepEqual(await readdir(join(dir, 'tmp')), []);
  });

  test('an update of a message no longer queued is refused with MESSAGE_NOT_FOUND', async () => {
    const { spool, envelope } = await spoolWithMessage();
    await spool.remove(envelope.id);
    await assert.rejects(spool.update(envelope), (err) => isPosternError(err, 'MESSAGE_NOT_FOUND'));
  });

  test('an update that is not a valid envelope is refused and changes nothing', async () => {
    const { spool, envelope } = await spoolWithMessage();
    await assert.rejects(spool.update({ ...envelope, recipients: [] }));
    assert.equal(spool.get(envelope.id)?.recipients.length, 2);
  });

  test('remove deletes both files, forgets the message and can be repeated', async () => {
    const { dir, spool, envelope } = await spoolWithMessage();
    await spool.remove(envelope.id);
    await spool.remove(envelope.id);
    assert.deepEqual(await readdir(join(dir, 'queue')), []);
    assert.deepEqual(spool.list(), []);
    assert.deepEqual(spool.stats(), { messages: 0, bytes: 0 });
    assert.throws(() => spool.openMessage(envelope.id), (err) => isPosternError(err, 'MESSAGE_NOT_FOUND'));
  });

  test('an update and a remove issued together never bring the envelope back', async () => {
    const { dir, spool, envelope } = await spoolWithMessage();
    const updating = spool.update({ ...envelope, attempts: 1 });
    const removing = spool.remove(envelope.id);
    await Promise.allSettled([updating, removing]);
    assert.deepEqual(await readdir(join(dir, 'queue')), []);
    assert.equal(spool.get(envelope.id), undefined);
  });

  test('stats count messages, bytes and the oldest acceptance time', async () => {
    const { clock, spool, envelope } = await spoolWithMessage();
    clock.advance(1000);
    const second = await spool.createIncoming();
    await second.write(Buffer.from('12345'));
    await second.commit({ sender: '', recipients: ['x@example.com'] });
    assert.deepEqual(spool.stats(), { messages: 2, bytes: envelope.size + 5, oldestReceivedAt: envelope.receivedAt });
  });
});
