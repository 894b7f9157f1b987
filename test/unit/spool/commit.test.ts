import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { describe, test } from 'node:test';
import { Spool } from '../../../src/spool/spool.js';
import { ManualClock } from '../../../src/util/clock.js';
import { silentLogger } from '../../../src/util/logger.js';
import { tempDir } from './helpers.js';

const MESSAGE = Buffer.from('From: a@example.com\r\nTo: b@example.net\r\nSubject: hi\r\n\r\nHello.\r\n');

describe('committing a message', () => {
  test('writes the message file and its envelope into the queue and nothing into tmp', async () => {
    const dir = await tempDir();
    const clock = new ManualClock();
    const spool = await Spool.open({ dir, logger: silentLogger(), clock });
    const incoming = await spool.createIncoming();
    await incoming.write(MESSAGE.subarray(0, 10));
    await incoming.write(MESSAGE.subarray(10));
    assert.equal(incoming.bytesWritten, MESSAGE.length);
    const envelope = await incoming.commit({ sender: 'a@example.com', recipients: ['b@example.net', 'c@example.org'], user: 'alice', clientIp: '192.0.2.1' });

    assert.equal(envelope.id, incoming.id);
    assert.equal(envelope.size, MESSAGE.length);
    assert.equal(envelope.receivedAt, clock.now());
    assert.equal(envelope.nextAttemptAt, clock.now());
    assert.deepEqual(envelope.recipients.map((r) => [r.address, r.status, r.attempts]), [
      ['b@example.net', 'pending', 0],
      ['c@example.org', 'pending', 0],
    ]);
    assert.deepEqual((await readdir(join(dir, 'queue'))).sort(), [`${incoming.id}.eml`, `${incoming.id}.json`]);
    assert.deepEqual(await readdir(join(dir, 'tmp')), []);
    assert.deepEqual(await readFile(spool.messagePath(incoming.id)), MESSAGE);
    const stored = JSON.parse(await readFile(join(dir, 'queue', `${incoming.id}.json`), 'utf8'));
    assert.equal(stored.sender, 'a@example.com');
    assert.equal(stored.user, 'alice');
    assert.deepEqual(spool.stats(), { messages: 1, bytes: MESSAGE.length, oldestReceivedAt: clock.now() });
  });

  test('survives a re-open: a new Spool on the same directory lists the message', async () => {
    const dir = await tempDir();
    const first = await Spool.open({ dir, logger: silentLogger(), clock: new ManualClock() });
    const incoming = await first.createIncoming();
    await incoming.write(MESSAGE);
    const envelope = await incoming.commit({ sender: '', recipients: ['b@example.net'], smtpUtf8: true, bodyType: '8bitmime' });

    const second = await Spool.open({ dir, logger: silentLogger(), clock: new ManualClock() });
    assert.deepEqual(second.list(), [envelope]);
    assert.equal(second.get(envelope.id)?.sender, '');
    const chunks: Buffer[] = [];
    for await (const chunk of second.openMessage(envelope.id)) chunks.push(chunk as Buffer);
    assert.deepEqual(Buffer.concat(chunks), MESSAGE);
  });

  test('accepts a piped stream through writable()', async () => {
    const dir = await tempDir();
    const spool = await Spool.open({ dir, logger: silentLogger(), clock: new ManualClock() });
    const incoming = await spool.createIncoming();
    const parts = Array.from({ length: 50 }, (_, i) => Buffer.from(`line ${i}\r\n`));
    await pipeline(Readable.from(parts), incoming.writable());
    await incoming.commit({ sender: 'a@example.com', recipients: ['b@example.net'] });
    assert.deepEqual(await readFile(spool.messagePath(incoming.id)), Buffer.concat(parts));
  });

  test('tells commit listeners about the message by the time commit() resolves', async () => {
    const dir = await tempDir();
    const spool = await Spool.open({ dir, logger: silentLogger(), clock: new ManualClock() });
    const seen: string[] = [];
    const unsubscribe = spool.onCommitted((envelope) => seen.push(envelope.id));
    const incoming = await spool.createIncoming();
    await incoming.write(MESSAGE);
    const commit = incoming.commit({ sender: 'a@example.com', recipients: ['b@example.net'] });
    await commit;
    assert.deepEqual(seen, [incoming.id]);
    unsubscribe();
    const next = await spool.createIncoming();
    await next.commit({ sender: 'a@example.com', recipients: ['b@example.net'] });
    assert.deepEqual(seen, [incoming.id]);
  });

  test('hands out copies: changing a listed envelope changes nothing in the spool', async () => {
    const dir = await tempDir();
    const spool = await Spool.open({ dir, logger: silentLogger(), clock: new ManualClock() });
    const incoming = await spool.createIncoming();
    await incoming.commit({ sender: 'a@example.com', recipients: ['b@example.net'] });
    const listed = spool.list()[0]!;
    listed.recipients[0]!.status = 'delivered';
    assert.equal(spool.get(incoming.id)?.recipients[0]?.status, 'pending');
  });

  test('refuses to commit a message without recipients', async () => {
    const dir = await tempDir();
    const spool = await Spool.open({ dir, logger: silentLogger(), clock: new ManualClock() });
    const incoming = await spool.createIncoming();
    await assert.rejects(incoming.commit({ sender: 'a@example.com', recipients: [] }), RangeError);
  });
});
