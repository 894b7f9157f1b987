import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { OfflineQueueControl, readQueuedEnvelope, readQueueSnapshot } from '../../../src/control/offlineQueueControl.js';
import { RETURNED_BY_OPERATOR } from '../../../src/delivery/queueControl.js';
import { parseEnvelope, type Envelope } from '../../../src/spool/envelope.js';
import { Spool } from '../../../src/spool/spool.js';
import { ManualClock } from '../../../src/util/clock.js';
import { silentLogger } from '../../../src/util/logger.js';

const HOUR = 3_600_000;

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'postern-offline-'));
  after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** A spool with two committed messages, both deferred for an hour, and a control over it. */
async function deferredQueue() {
  const dir = await tempDir();
  const clock = new ManualClock();
  const spool = await Spool.open({ dir, logger: silentLogger(), clock });
  const ids: string[] = [];
  for (const recipients of [['b@example.net', 'c@example.net'], ['d@example.org']]) {
    const incoming = await spool.createIncoming();
    await incoming.write(Buffer.from('Subject: x\r\n\r\nbody\r\n'));
    const envelope = await incoming.commit({ sender: 'a@example.com', recipients });
    await spool.update({ ...envelope, attempts: 1, nextAttemptAt: clock.now() + HOUR });
    ids.push(envelope.id);
  }
  clock.advance(60_000);
  return { dir, clock, spool, ids: ids as [string, string], control: new OfflineQueueControl({ spool, clock }) };
}

async function onDisk(dir: string, id: string): Promise<Envelope> {
  return parseEnvelope(await readFile(join(dir, 'queue', `${id}.json`), 'utf8'));
}

describe('acting on the queue with no gateway running', () => {
  test('retry with an ID makes that message due now on disk and leaves the other alone', async () => {
    const { dir, clock, ids, control } = await deferredQueue();
    assert.equal(await control.retry(ids[0]), 1);
    assert.equal((await onDisk(dir, ids[0])).nextAttemptAt, clock.now());
    assert.ok((await onDisk(dir, ids[1])).nextAttemptAt > clock.now());
  });

  test('retry without an ID makes every message due and counts them', async () => {
    const { dir, clock, ids, control } = await deferredQueue();
    assert.equal(await control.retry(), 2);
    for (const id of ids) assert.equal((await onDisk(dir, id)).nextAttemptAt, clock.now());
  });

  test('retry of an unknown ID matches nothing and writes nothing', async () => {
    const { control } = await deferredQueue();
    assert.equal(await control.retry('01JZZZZZZZZZZZZZ'), 0);
  });

  test('delete removes the message and its envelope, and is false the second time', async () => {
    const { dir, ids, control } = await deferredQueue();
    assert.equal(await control.delete(ids[0]), true);
    assert.deepEqual((await readdir(join(dir, 'queue'))).sort(), [`${ids[1]}.eml`, `${ids[1]}.json`]);
    assert.equal(control.get(ids[0]), undefined);
    assert.equal(await control.delete(ids[0]), false);
  });

  test('bounce fails every pending recipient as returned by the operator, due now, keeping the delivered ones', async () => {
    const { dir, clock, spool, ids, control } = await deferredQueue();
    const before = spool.get(ids[0])!;
    before.recipients[0] = { ...before.recipients[0]!, status: 'delivered', attempts: 1, lastReply: '250 2.0.0 ok', lastAttemptAt: 5 };
    before.recipients[1] = { ...before.recipients[1]!, attempts: 1, lastReply: '451 4.2.0 busy', remoteMta: 'mx.example.net', lastAttemptAt: 5 };
    await spool.update(before);

    assert.equal(await control.bounce(ids[0]), true);
    const after = await onDisk(dir, ids[0]);
    assert.deepEqual(after.recipients, [
      { address: 'b@example.net', status: 'delivered', attempts: 1, lastReply: '250 2.0.0 ok', lastAttemptAt: 5 },
      // No Remote-MTA: mx.example.net did not give this answer.
      { address: 'c@example.net', status: 'failed', attempts: 1, lastReply: RETURNED_BY_OPERATOR, lastAttemptAt: clock.now() },
    ]);
    assert.equal(after.nextAttemptAt, clock.now());
    assert.equal(after.recipients.some((r) => r.dsnSent), false, 'the notification is left to the gateway');

    const reopened = await Spool.open({ dir, logger: silentLogger(), clock });
    assert.deepEqual(reopened.get(ids[0]), after);
  });

  test('bounce of an unknown ID is false', async () => {
    const { control } = await deferredQueue();
    assert.equal(await control.bounce('01JZZZZZZZZZZZZZ'), false);
  });
});

describe('reading the queue without a gateway', () => {
  test('lists what is on disk, oldest first, and changes nothing', async () => {
    const { dir, ids } = await deferredQueue();
    // What a gateway (or another command) could be writing right now must survive a look.
    await writeFile(join(dir, 'tmp', 'in-progress.eml'), 'Subject: half');
    await writeFile(join(dir, 'queue', '01J0000000000000.eml'), 'a message file without an envelope');
    const before = (await readdir(join(dir, 'queue'))).sort();

    const snapshot = await readQueueSnapshot(dir);
    assert.deepEqual(
      snapshot.envelopes.map((e) => e.id),
      ids,
    );
    assert.deepEqual(snapshot.unreadable, []);
    assert.deepEqual(await readdir(join(dir, 'tmp')), ['in-progress.eml']);
    assert.deepEqual((await readdir(join(dir, 'queue'))).sort(), before);
  });

  test('reports an unreadable envelope with the reason and leaves it in place', async () => {
    const { dir, ids } = await deferredQueue();
    await writeFile(join(dir, 'queue', `${ids[1]}.json`), '{"version": 1');
    const snapshot = await readQueueSnapshot(dir);
    assert.deepEqual(
      snapshot.envelopes.map((e) => e.id),
      [ids[0]],
    );
    assert.equal(snapshot.unreadable.length, 1);
    assert.equal(snapshot.unreadable[0]!.file, `${ids[1]}.json`);
    assert.match(snapshot.unreadable[0]!.reason, /not JSON/);
    assert.ok((await readdir(join(dir, 'queue'))).includes(`${ids[1]}.json`));
  });

  test('reads one envelope by ID, nothing for an unknown ID, and names what is wrong with a broken one', async () => {
    const { dir, ids } = await deferredQueue();
    assert.equal((await readQueuedEnvelope(dir, ids[0]))?.id, ids[0]);
    assert.equal(await readQueuedEnvelope(dir, '01JZZZZZZZZZZZZZ'), undefined);
    assert.equal(await readQueuedEnvelope(dir, '../queue'), undefined);
    await rm(join(dir, 'queue', `${ids[1]}.eml`));
    await assert.rejects(readQueuedEnvelope(dir, ids[1]), /the message file is missing/);
  });

  test('finds an empty queue in a spool directory that does not exist, without creating it', async () => {
    const dir = join(await tempDir(), 'spool');
    assert.deepEqual(await readQueueSnapshot(dir), { envelopes: [], unreadable: [] });
    await assert.rejects(readdir(dir), { code: 'ENOENT' });
  });
});
