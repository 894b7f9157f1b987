import assert from 'node:assert/strict';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { deliveryFixture, PLAIN_SMARTHOST } from './fixture.js';
import { startUpstream } from './upstream.js';

const MESSAGE = 'From: a@example.com\r\nSubject: retry\r\n\r\nbody\r\n';

describe('per-recipient results and retries', () => {
  test('a 5xx for one of two recipients fails that one, delivers the other and removes the message', async () => {
    const upstream = await startUpstream({
      refuseRecipient: (address) => (address === 'gone@example.net' ? { code: 550, text: '5.1.1 No such user' } : undefined),
    });
    const fixture = await deliveryFixture({ smarthost: { ...PLAIN_SMARTHOST, port: upstream.port } });
    try {
      const attempt = fixture.nextAttempt();
      const envelope = await fixture.commit(MESSAGE, { sender: 'a@example.com', recipients: ['gone@example.net', 'here@example.net'] });
      const report = await attempt;

      assert.equal(report.result, 'partial');
      assert.equal(report.removed, true);
      assert.deepEqual(
        report.recipients.map((r) => [r.address, r.outcome]),
        [
          ['gone@example.net', 'failed'],
          ['here@example.net', 'delivered'],
        ],
      );
      assert.match(report.recipients[0]!.reply, /^550 5\.1\.1 No such user/);
      assert.deepEqual(upstream.received.map((m) => m.to), [['here@example.net']]);
      assert.equal(fixture.spool.get(envelope.id), undefined);
      assert.deepEqual(await readdir(join(fixture.dir, 'queue')), []);
    } finally {
      await fixture.close();
      await upstream.close();
    }
  });

  test('a 4xx keeps the message queued until the schedule says, then only the pending recipients are sent', async () => {
    let busy = true;
    const upstream = await startUpstream({
      refuseRecipient: (address) => (busy && address === 'later@example.net' ? { code: 451, text: '4.3.0 Try again later' } : undefined),
    });
    const fixture = await deliveryFixture({ smarthost: { ...PLAIN_SMARTHOST, port: upstream.port }, schedule: [50, 100] });
    try {
      let attempt = fixture.nextAttempt();
      const envelope = await fixture.commit(MESSAGE, { sender: 'a@example.com', recipients: ['now@example.net', 'later@example.net'] });
      const first = await attempt;

      assert.equal(first.result, 'partial');
      assert.equal(first.removed, false);
      const stored = fixture.spool.get(envelope.id)!;
      assert.equal(stored.attempts, 1);
      assert.equal(stored.nextAttemptAt, fixture.clock.now() + 50);
      assert.deepEqual(
        stored.recipients.map((r) => [r.address, r.status, r.attempts]),
        [
          ['now@example.net', 'delivered', 1],
          ['later@example.net', 'pending', 1],
        ],
      );
      assert.match(stored.recipients[1]!.lastReply ?? '', /^451 4\.3\.0 Try again later/);

      busy = false;
      attempt = fixture.nextAttempt();
      fixture.clock.advance(50);
      const second = await attempt;

      assert.equal(second.result, 'delivered');
      assert.equal(second.removed, true);
      assert.deepEqual(upstream.rcptSeen, ['now@example.net', 'later@example.net', 'later@example.net']);
      assert.deepEqual(upstream.received.map((m) => m.to), [['now@example.net'], ['later@example.net']]);
      assert.equal(fixture.spool.get(envelope.id), undefined);
    } finally {
      await fixture.close();
      await upstream.close();
    }
  });

  test('a message is not attempted again before its next attempt time', async () => {
    const upstream = await startUpstream({ refuseRecipient: () => ({ code: 450, text: '4.2.1 Mailbox busy' }) });
    const fixture = await deliveryFixture({ smarthost: { ...PLAIN_SMARTHOST, port: upstream.port }, schedule: [60_000] });
    try {
      const attempt = fixture.nextAttempt();
      const envelope = await fixture.commit(MESSAGE, { sender: 'a@example.com', recipients: ['b@example.net'] });
      assert.equal((await attempt).result, 'deferred');
      fixture.clock.advance(59_999);
      // Another message going through proves the queue is awake and has looked again.
      const other = fixture.nextAttempt();
      await fixture.commit(MESSAGE, { sender: 'a@example.com', recipients: ['c@example.net'] });
      const report = await other;
      assert.notEqual(report.id, envelope.id);
      assert.equal(fixture.spool.get(envelope.id)?.attempts, 1);
      assert.deepEqual(upstream.rcptSeen, ['b@example.net', 'c@example.net']);
    } finally {
      await fixture.close();
      await upstream.close();
    }
  });

  test('an unreachable smarthost defers the message, which goes out once the smarthost is up and the time has come', async () => {
    const placeholder = await startUpstream();
    const port = placeholder.port;
    await placeholder.close();
    const fixture = await deliveryFixture({ smarthost: { ...PLAIN_SMARTHOST, port }, schedule: [50] });
    let upstream: Awaited<ReturnType<typeof startUpstream>> | undefined;
    try {
      let attempt = fixture.nextAttempt();
      const envelope = await fixture.commit(MESSAGE, { sender: 'a@example.com', recipients: ['b@example.net'] });
      const first = await attempt;
      assert.equal(first.result, 'deferred');
      assert.match(first.recipients[0]!.reply, /ECONNREFUSED/);
      assert.equal(fixture.spool.get(envelope.id)?.nextAttemptAt, fixture.clock.now() + 50);

      upstream = await startUpstream({ port });
      attempt = fixture.nextAttempt();
      fixture.clock.advance(50);
      const second = await attempt;
      assert.equal(second.result, 'delivered');
      assert.equal(upstream.received.length, 1);
      assert.deepEqual(fixture.spool.list(), []);
    } finally {
      await fixture.close();
      await upstream?.close();
    }
  });

  test('past the maximum age a temporary failure becomes final and the message leaves the spool', async () => {
    const upstream = await startUpstream({ refuseRecipient: () => ({ code: 452, text: '4.2.2 Mailbox full' }) });
    const maxAgeMs = 3_600_000;
    const fixture = await deliveryFixture({ smarthost: { ...PLAIN_SMARTHOST, port: upstream.port }, schedule: [50], maxAgeMs, start: false });
    try {
      const envelope = await fixture.commit(MESSAGE, { sender: 'a@example.com', recipients: ['b@example.net'] });
      fixture.clock.advance(maxAgeMs);
      const attempt = fixture.nextAttempt();
      fixture.queue.start();
      const report = await attempt;

      assert.equal(report.result, 'failed');
      assert.equal(report.removed, true);
      assert.equal(report.recipients[0]?.expired, true);
      assert.match(report.recipients[0]!.reply, /^452 4\.2\.2 Mailbox full/);
      assert.equal(fixture.spool.get(envelope.id), undefined);
    } finally {
      await fixture.close();
      await upstream.close();
    }
  });

  test('a message younger than the maximum age is deferred by the same failure', async () => {
    const upstream = await startUpstream({ refuseRecipient: () => ({ code: 452, text: '4.2.2 Mailbox full' }) });
    const maxAgeMs = 3_600_000;
    const fixture = await deliveryFixture({ smarthost: { ...PLAIN_SMARTHOST, port: upstream.port }, schedule: [50], maxAgeMs, start: false });
    try {
      const envelope = await fixture.commit(MESSAGE, { sender: 'a@example.com', recipients: ['b@example.net'] });
      fixture.clock.advance(maxAgeMs - 1);
      const attempt = fixture.nextAttempt();
      fixture.queue.start();
      const report = await attempt;
      assert.equal(report.result, 'deferred');
      assert.equal(fixture.spool.get(envelope.id)?.recipients[0]?.status, 'pending');
    } finally {
      await fixture.close();
      await upstream.close();
    }
  });

  test('retryAll attempts a deferred message at once, whatever its schedule says', async () => {
    let busy = true;
    const upstream = await startUpstream({ refuseRecipient: () => (busy ? { code: 450, text: '4.2.1 Busy' } : undefined) });
    const fixture = await deliveryFixture({ smarthost: { ...PLAIN_SMARTHOST, port: upstream.port }, schedule: [3_600_000] });
    try {
      let attempt = fixture.nextAttempt();
      await fixture.commit(MESSAGE, { sender: 'a@example.com', recipients: ['b@example.net'] });
      assert.equal((await attempt).result, 'deferred');
      busy = false;
      attempt = fixture.nextAttempt();
      fixture.queue.retryAll();
      assert.equal((await attempt).result, 'delivered');
    } finally {
      await fixture.close();
      await upstream.close();
    }
  });
});
