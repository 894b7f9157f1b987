import assert from 'node:assert/strict';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import type { Envelope } from '../../../src/spool/envelope.js';
import { deliveryFixture, PLAIN_SMARTHOST, type DeliveryFixture } from './fixture.js';
import { startUpstream, type Upstream } from './upstream.js';

const MESSAGE = 'From: a@example.com\r\nTo: gone@example.net\r\nSubject: notify\r\nMessage-ID: <orig@example.com>\r\n\r\nbody\r\n';

/** Resolves once the spool's queue directory is empty. */
async function queueEmptied(fixture: DeliveryFixture): Promise<void> {
  for (;;) {
    if ((await readdir(join(fixture.dir, 'queue'))).length === 0 && fixture.spool.list().length === 0) return;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

function refusing(addresses: Record<string, { code: number; text: string }>) {
  return (address: string) => addresses[address];
}

describe('telling senders what failed', () => {
  test('a refused recipient gets its sender one bounce from <>, quoting the refusal, and the queue empties', async () => {
    const upstream = await startUpstream({ refuseRecipient: refusing({ 'gone@example.net': { code: 550, text: '5.1.1 No such user' } }) });
    const fixture = await deliveryFixture({ smarthost: { ...PLAIN_SMARTHOST, port: upstream.port }, notify: {} });
    try {
      await fixture.commit(MESSAGE, { sender: 'a@example.com', recipients: ['gone@example.net', 'here@example.net'] });
      const bounce = await waitForMessageFrom(upstream, '');
      assert.deepEqual(bounce.to, ['a@example.com']);
      const text = bounce.data.toString();
      assert.match(text, /^Content-Type: multipart\/report; report-type=delivery-status;/m);
      assert.match(text, /^Final-Recipient: rfc822; gone@example\.net\r$/m);
      assert.match(text, /^Status: 5\.1\.1\r$/m);
      assert.match(text, /^Diagnostic-Code: smtp; 550 5\.1\.1 No such user/m);
      assert.match(text, /^Message-ID: <orig@example\.com>\r$/m, 'the original headers come back');
      assert.doesNotMatch(text, /here@example\.net/, 'only the failed recipient is reported');
      await queueEmptied(fixture);
      assert.equal(upstream.received.filter((m) => m.from === '').length, 1);
    } finally {
      await fixture.close();
      await upstream.close();
    }
  });

  test('a bounce that fails in turn is dropped, never bounced', async () => {
    const upstream = await startUpstream({
      refuseRecipient: refusing({
        'gone@example.net': { code: 550, text: '5.1.1 No such user' },
        'a@example.com': { code: 550, text: '5.1.1 Sender mailbox gone too' },
      }),
    });
    const fixture = await deliveryFixture({ smarthost: { ...PLAIN_SMARTHOST, port: upstream.port }, notify: {} });
    try {
      const reports: Envelope[] = [];
      fixture.queue.onAttempt((report) => reports.push(report.envelope));
      await fixture.commit(MESSAGE, { sender: 'a@example.com', recipients: ['gone@example.net'] });
      await until(() => reports.some((e) => e.sender === ''));
      await queueEmptied(fixture);
      assert.equal(reports.filter((e) => e.sender === '').length, 1, 'one attempt of the bounce, no bounce of it');
      assert.deepEqual(upstream.rcptSeen, ['gone@example.net', 'a@example.com']);
    } finally {
      await fixture.close();
      await upstream.close();
    }
  });

  test('a restart between recording a failure and queuing its bounce queues it once, under the recorded ID', async () => {
    const upstream = await startUpstream();
    const first = await deliveryFixture({ smarthost: { ...PLAIN_SMARTHOST, port: upstream.port }, notify: {}, start: false });
    const envelope = await first.commit(MESSAGE, { sender: 'a@example.com', recipients: ['gone@example.net'] });
    const dsnId = first.spool.reserveId();
    // The state an attempt records just before it queues the bounce.
    await first.spool.update({
      ...envelope,
      attempts: 1,
      recipients: [{ address: 'gone@example.net', status: 'failed', attempts: 1, lastReply: '550 5.1.1 No such user', dsnId }],
    });
    await first.halt();

    const second = await deliveryFixture({ smarthost: { ...PLAIN_SMARTHOST, port: upstream.port }, notify: {}, dir: first.dir });
    try {
      const bounce = await waitForMessageFrom(upstream, '');
      assert.match(bounce.data.toString(), /^Status: 5\.1\.1\r$/m);
      await queueEmptied(second);
      assert.equal(upstream.received.length, 1);
    } finally {
      await second.close();
      await upstream.close();
    }
  });

  test('a restart after the bounce was queued does not queue it again', async () => {
    const upstream = await startUpstream({ beforeDataReply: () => new Promise(() => undefined) });
    const first = await deliveryFixture({ smarthost: { ...PLAIN_SMARTHOST, port: upstream.port }, notify: {}, start: false });
    const envelope = await first.commit(MESSAGE, { sender: 'a@example.com', recipients: ['gone@example.net'] });
    const dsnId = first.spool.reserveId();
    await first.spool.update({
      ...envelope,
      attempts: 1,
      recipients: [{ address: 'gone@example.net', status: 'failed', attempts: 1, lastReply: '550 5.1.1 No such user', dsnId }],
    });
    // The bounce made it into the queue; the crash came before the original was updated.
    await first.spool.enqueue(dsnId, { sender: '', recipients: ['a@example.com'] }, Buffer.from('Subject: the bounce\r\n\r\nx\r\n'));
    await first.halt();

    const second = await deliveryFixture({ smarthost: { ...PLAIN_SMARTHOST, port: upstream.port }, notify: {}, dir: first.dir, start: false });
    try {
      const attempt = second.nextAttempt();
      second.queue.start();
      // The original is settled first (its ID sorts before the bounce's).
      const report = await attempt;
      assert.equal(report.id, envelope.id);
      assert.equal(report.removed, true);
      assert.deepEqual(second.spool.list().map((e) => e.id), [dsnId], 'only the one bounce is queued');
    } finally {
      await second.close();
      await upstream.close();
    }
  });

  test('a bounce queued just before a crash is recorded before it is sent, so the message still pending never queues it again', async () => {
    const upstream = await startUpstream({ refuseRecipient: refusing({ 'slow@example.net': { code: 451, text: '4.2.1 Mailbox busy' } }) });
    const first = await deliveryFixture({ smarthost: { ...PLAIN_SMARTHOST, port: upstream.port }, notify: {}, start: false, schedule: [3_600_000] });
    const envelope = await first.commit(MESSAGE, { sender: 'a@example.com', recipients: ['gone@example.net', 'slow@example.net'] });
    const dsnId = first.spool.reserveId();
    // Recorded: one recipient failed (its bounce planned), one deferred for an hour.
    await first.spool.update({
      ...envelope,
      attempts: 1,
      nextAttemptAt: first.clock.now() + 3_600_000,
      recipients: [
        { address: 'gone@example.net', status: 'failed', attempts: 1, lastReply: '550 5.1.1 No such user', dsnId },
        { address: 'slow@example.net', status: 'pending', attempts: 1, lastReply: '451 4.2.1 Mailbox busy' },
      ],
    });
    // The bounce made it into the queue; the crash came before the original recorded it.
    await first.spool.enqueue(dsnId, { sender: '', recipients: ['a@example.com'] }, Buffer.from('Subject: the bounce\r\n\r\nx\r\n'));
    await first.halt();

    const second = await deliveryFixture({ smarthost: { ...PLAIN_SMARTHOST, port: upstream.port }, notify: {}, dir: first.dir, schedule: [3_600_000] });
    try {
      await waitForMessageFrom(upstream, '');
      assert.equal(second.spool.get(envelope.id)!.recipients[0]!.dsnSent, true, 'recorded before the bounce went out');
      // The original comes up again (an operator's retry): no second bounce.
      const attempt = second.nextAttempt();
      await second.queue.retry(envelope.id);
      await attempt;
      assert.equal(upstream.received.filter((m) => m.from === '').length, 1);
      assert.deepEqual(second.spool.list().map((e) => e.id), [envelope.id]);
    } finally {
      await second.close();
      await upstream.close();
    }
  });

  test('a message still undelivered after the warning time tells its sender once, and stays queued', async () => {
    const upstream = await startUpstream({ refuseRecipient: refusing({ 'slow@example.net': { code: 451, text: '4.2.1 Mailbox busy' } }) });
    const fixture = await deliveryFixture({ smarthost: { ...PLAIN_SMARTHOST, port: upstream.port }, notify: { delayWarningMs: 1000 }, schedule: [50] });
    try {
      const envelope = await fixture.commit(MESSAGE, { sender: 'a@example.com', recipients: ['slow@example.net'] });
      await fixture.nextAttempt();
      assert.equal(upstream.received.length, 0, 'no warning before its time');
      fixture.clock.advance(1000);
      const warning = await waitForMessageFrom(upstream, '');
      const text = warning.data.toString();
      assert.match(text, /^Subject: Delayed Mail/m);
      assert.match(text, /^Action: delayed\r$/m);
      assert.match(text, /^Status: 4\.2\.1\r$/m);
      // Later attempts send no second warning.
      for (let i = 0; i < 3; i++) {
        const next = fixture.nextAttempt();
        fixture.clock.advance(100);
        await next;
      }
      assert.equal(upstream.received.filter((m) => m.from === '').length, 1);
      const stored = fixture.spool.get(envelope.id)!;
      assert.equal(stored.delayWarningSent, true);
      assert.equal(stored.recipients[0]!.status, 'pending');
    } finally {
      await fixture.close();
      await upstream.close();
    }
  });
});

describe('operator commands on a running queue', () => {
  test('bounce gives up on a deferred message: the sender is told and the message leaves the queue', async () => {
    const upstream = await startUpstream({ refuseRecipient: refusing({ 'slow@example.net': { code: 451, text: '4.2.1 Mailbox busy' } }) });
    const fixture = await deliveryFixture({ smarthost: { ...PLAIN_SMARTHOST, port: upstream.port }, notify: {}, schedule: [3_600_000] });
    try {
      const envelope = await fixture.commit(MESSAGE, { sender: 'a@example.com', recipients: ['slow@example.net'] });
      await fixture.nextAttempt();
      assert.equal(await fixture.queue.bounce(envelope.id), true);
      const bounce = await waitForMessageFrom(upstream, '');
      assert.match(bounce.data.toString(), /returned to the sender by the postmaster/);
      await queueEmptied(fixture);
      assert.equal(await fixture.queue.bounce(envelope.id), false);
    } finally {
      await fixture.close();
      await upstream.close();
    }
  });

  test('delete of a message being sent waits for the attempt, then removes it without a bounce', async () => {
    let release: () => void = () => undefined;
    const held = new Promise<void>((resolve) => (release = resolve));
    const upstream = await startUpstream({
      beforeDataReply: () => held,
      refuseData: () => ({ code: 451, text: '4.3.0 Try later' }),
    });
    const fixture = await deliveryFixture({ smarthost: { ...PLAIN_SMARTHOST, port: upstream.port }, notify: {}, schedule: [10] });
    try {
      const envelope = await fixture.commit(MESSAGE, { sender: 'a@example.com', recipients: ['x@example.net'] });
      await until(() => fixture.queue.activeCount === 1);
      const deleted = fixture.queue.delete(envelope.id);
      release();
      assert.equal(await deleted, true);
      assert.equal(fixture.spool.get(envelope.id), undefined);
      fixture.clock.advance(1000);
      await new Promise((resolve) => setTimeout(resolve, 100));
      assert.equal(fixture.queue.activeCount, 0, 'no attempt after the delete');
      assert.deepEqual(await readdir(join(fixture.dir, 'queue')), []);
      assert.equal(upstream.received.length, 0);
    } finally {
      await fixture.close();
      await upstream.close();
    }
  });

  test('retry sends a deferred message now instead of when its schedule says', async () => {
    let busy = true;
    const upstream = await startUpstream({ refuseRecipient: (address) => (busy ? { code: 451, text: `4.2.1 ${address} busy` } : undefined) });
    const fixture = await deliveryFixture({ smarthost: { ...PLAIN_SMARTHOST, port: upstream.port }, schedule: [3_600_000] });
    try {
      const envelope = await fixture.commit(MESSAGE, { sender: 'a@example.com', recipients: ['x@example.net'] });
      await fixture.nextAttempt();
      busy = false;
      const attempt = fixture.nextAttempt();
      assert.equal(await fixture.queue.retry(envelope.id), 1);
      assert.equal((await attempt).result, 'delivered');
      assert.equal(await fixture.queue.retry('0000000000000000'), 0);
    } finally {
      await fixture.close();
      await upstream.close();
    }
  });
});

async function until(condition: () => boolean): Promise<void> {
  while (!condition()) await new Promise((resolve) => setTimeout(resolve, 10));
}

async function waitForMessageFrom(upstream: Upstream, sender: string) {
  for (;;) {
    const found = upstream.received.find((m) => m.from === sender);
    if (found) return found;
    await upstream.nextMessage();
  }
}
