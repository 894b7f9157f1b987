import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { deliveryFixture, PLAIN_SMARTHOST } from './fixture.js';
import { startUpstream } from './upstream.js';

describe('delivery concurrency', () => {
  test('sends at most `concurrency` messages at once and each message once', async () => {
    const held: Array<() => void> = [];
    let heldChanged: () => void = () => undefined;
    const upstream = await startUpstream({
      beforeDataReply: () =>
        new Promise<void>((resolve) => {
          held.push(resolve);
          heldChanged();
        }),
    });
    const fixture = await deliveryFixture({ smarthost: { ...PLAIN_SMARTHOST, port: upstream.port }, concurrency: 2 });
    const waitForHeld = (count: number) =>
      new Promise<void>((resolve) => {
        heldChanged = () => {
          if (held.length >= count) resolve();
        };
        heldChanged();
      });
    try {
      let reports = 0;
      const allDone = new Promise<void>((resolve) => {
        fixture.queue.onAttempt(() => {
          reports += 1;
          if (reports === 3) resolve();
        });
      });
      for (let i = 0; i < 3; i++) {
        await fixture.commit(`Subject: ${i}\r\n\r\nx\r\n`, { sender: 'a@example.com', recipients: [`r${i}@example.net`] });
        fixture.clock.advance(1);
      }
      await waitForHeld(2);
      assert.equal(fixture.queue.activeCount, 2);
      assert.deepEqual(upstream.rcptSeen, ['r0@example.net', 'r1@example.net'], 'the third message waits for a free slot');

      held.splice(0).forEach((release) => release());
      await waitForHeld(1);
      assert.deepEqual(upstream.rcptSeen, ['r0@example.net', 'r1@example.net', 'r2@example.net']);
      held.splice(0).forEach((release) => release());
      await allDone;

      assert.equal(upstream.received.length, 3);
      assert.deepEqual(fixture.spool.list(), []);
    } finally {
      held.splice(0).forEach((release) => release());
      await fixture.close();
      await upstream.close();
    }
  });

  test('stop waits for the send in flight, then takes no more work', async () => {
    let release: () => void = () => undefined;
    let started: () => void = () => undefined;
    const inData = new Promise<void>((resolve) => (started = resolve));
    const upstream = await startUpstream({
      beforeDataReply: () =>
        new Promise<void>((resolve) => {
          release = resolve;
          started();
        }),
    });
    const fixture = await deliveryFixture({ smarthost: { ...PLAIN_SMARTHOST, port: upstream.port }, concurrency: 1 });
    try {
      const first = await fixture.commit('Subject: 1\r\n\r\nx\r\n', { sender: 'a@example.com', recipients: ['r1@example.net'] });
      await inData;
      const stopping = fixture.queue.stop(10_000);
      const second = await fixture.commit('Subject: 2\r\n\r\nx\r\n', { sender: 'a@example.com', recipients: ['r2@example.net'] });
      release();
      await stopping;

      assert.equal(fixture.spool.get(first.id), undefined, 'the message in flight finished');
      assert.equal(fixture.spool.get(second.id)?.attempts, 0, 'the message committed during the stop stays queued');
      assert.deepEqual(upstream.rcptSeen, ['r1@example.net']);
    } finally {
      release();
      await fixture.close();
      await upstream.close();
    }
  });
});
