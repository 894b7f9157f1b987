import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { describe, test } from 'node:test';
import MimeNode from 'nodemailer/lib/mime-node';
import type { RelayTarget as SmarthostConfig } from '../../../src/delivery/smarthostSender.js';
import { SmarthostSender, normaliseEnvelope, type OutgoingMessage } from '../../../src/delivery/smarthostSender.js';
import { SmtpConnectionPool } from '../../../src/delivery/smtpConnectionPool.js';
import { silentLogger } from '../../../src/util/logger.js';
import { startUpstream, type Upstream } from './upstream.js';

const BODY = Buffer.from('Subject: pooled\r\n\r\nbody\r\n');
/** A failing test ends instead of waiting forever for a connection to close. */
const BOUNDED = { timeout: 15_000 };

function outgoing(recipient = 'b@example.net'): OutgoingMessage {
  return { id: '06DQDPN80094K2Y8', sender: 'a@example.com', recipients: [recipient], message: () => Readable.from([BODY]), size: BODY.length };
}

function senderFor(upstream: Upstream, options: { maxConnections?: number; idleTimeoutMs?: number } = {}, smarthost: Partial<SmarthostConfig> = {}) {
  return new SmarthostSender({ host: '127.0.0.1', port: upstream.port, tls: 'none', verifyCertificate: true, ...smarthost }, silentLogger(), options);
}

/** Holds each message's final reply until the test lets it go. */
function holdReplies() {
  const held: Array<() => void> = [];
  let onHeld: () => void = () => undefined;
  return {
    beforeDataReply: () =>
      new Promise<void>((resolve) => {
        held.push(resolve);
        onHeld();
      }),
    until(count: number) {
      return new Promise<void>((resolve) => {
        onHeld = () => {
          if (held.length >= count) resolve();
        };
        onHeld();
      });
    },
    releaseOne: () => held.shift()?.(),
    releaseAll: () => held.splice(0).forEach((release) => release()),
  };
}

describe('the smarthost connection pool', () => {
  test('sends the next message over the connection the previous one used', BOUNDED, async () => {
    const upstream = await startUpstream();
    const sender = senderFor(upstream);
    try {
      const first = await sender.send(outgoing('one@example.net'));
      const second = await sender.send(outgoing('two@example.net'));
      assert.deepEqual([...first.recipients, ...second.recipients].map((r) => r.outcome), ['delivered', 'delivered']);
      assert.equal(upstream.received.length, 2);
      assert.equal(upstream.connectionsAccepted, 1);
    } finally {
      sender.close();
      await upstream.close();
    }
  });

  test('never has more than maxConnections open at once, and queued sends take a freed connection', BOUNDED, async () => {
    const hold = holdReplies();
    const upstream = await startUpstream({ beforeDataReply: hold.beforeDataReply });
    const pool = new SmtpConnectionPool({ connection: { host: '127.0.0.1', port: upstream.port, ignoreTLS: true, logger: false }, maxConnections: 2, logger: silentLogger() });
    try {
      const sends = Array.from({ length: 5 }, (_, i) =>
        pool.send({ from: 'a@example.com', to: [`r${i}@example.net`] }, () => Readable.from([BODY])),
      );
      await hold.until(2);
      assert.equal(pool.size, 2);
      assert.equal(upstream.received.length, 0);
      for (let delivered = 0; delivered < 5; delivered++) {
        await hold.until(1);
        hold.releaseOne();
      }
      const infos = await Promise.all(sends);
      assert.equal(infos.length, 5);
      assert.equal(upstream.received.length, 5);
      assert.equal(upstream.connectionsAccepted, 2);
      assert.equal(upstream.peakOpenConnections, 2);
    } finally {
      hold.releaseAll();
      pool.close();
      await upstream.close();
    }
  });

  test('does not reuse a connection the server closed while it was idle', BOUNDED, async () => {
    const upstream = await startUpstream({ idleTimeoutMs: 300 });
    const sender = senderFor(upstream);
    try {
      assert.equal((await sender.send(outgoing())).recipients[0]?.outcome, 'delivered');
      await upstream.untilOpenConnections(0);
      assert.equal((await sender.send(outgoing())).recipients[0]?.outcome, 'delivered');
      assert.equal(upstream.connectionsAccepted, 2);
      assert.equal(upstream.received.length, 2);
    } finally {
      sender.close();
      await upstream.close();
    }
  });

  test('sends a message once more on a new connection when a reused one gets a 421 before the message', BOUNDED, async () => {
    const upstream = await startUpstream({ refuseSender: (transaction) => (transaction === 2 ? { code: 421, text: '4.3.2 Closing' } : undefined) });
    const sender = senderFor(upstream);
    try {
      assert.equal((await sender.send(outgoing('one@example.net'))).recipients[0]?.outcome, 'delivered');
      assert.equal((await sender.send(outgoing('two@example.net'))).recipients[0]?.outcome, 'delivered');
      assert.equal(upstream.connectionsAccepted, 2);
      assert.deepEqual(upstream.received.map((m) => m.to), [['one@example.net'], ['two@example.net']]);
    } finally {
      sender.close();
      await upstream.close();
    }
  });

  test('defers, without another try, when a new connection gets a 421', BOUNDED, async () => {
    const upstream = await startUpstream({ refuseSender: () => ({ code: 421, text: '4.3.2 Closing' }) });
    const sender = senderFor(upstream);
    try {
      const attempt = await sender.send(outgoing());
      assert.equal(attempt.recipients[0]?.outcome, 'deferred');
      assert.match(attempt.recipients[0]!.reply, /^421/);
      assert.equal(upstream.connectionsAccepted, 1);
    } finally {
      sender.close();
      await upstream.close();
    }
  });

  test('keeps using a connection after the server refused every recipient of a message', BOUNDED, async () => {
    const upstream = await startUpstream({ refuseRecipient: (a) => (a.startsWith('gone') ? { code: 550, text: '5.1.1 Unknown' } : undefined) });
    const sender = senderFor(upstream);
    try {
      assert.equal((await sender.send(outgoing('gone@example.net'))).recipients[0]?.outcome, 'failed');
      assert.equal((await sender.send(outgoing('here@example.net'))).recipients[0]?.outcome, 'delivered');
      assert.equal(upstream.connectionsAccepted, 1);
      assert.deepEqual(upstream.received.map((m) => m.to), [['here@example.net']]);
    } finally {
      sender.close();
      await upstream.close();
    }
  });

  test('closes an idle connection after the idle timeout', BOUNDED, async () => {
    const upstream = await startUpstream();
    const sender = senderFor(upstream, { idleTimeoutMs: 50 });
    try {
      assert.equal((await sender.send(outgoing())).recipients[0]?.outcome, 'delivered');
      await upstream.untilOpenConnections(0);
      assert.equal(upstream.connectionsAccepted, 1);
    } finally {
      sender.close();
      await upstream.close();
    }
  });

  test('close() ends idle connections at once and a busy one when its message is done', BOUNDED, async () => {
    const hold = holdReplies();
    const upstream = await startUpstream({ beforeDataReply: hold.beforeDataReply });
    const sender = senderFor(upstream, { maxConnections: 2 });
    try {
      const first = sender.send(outgoing('one@example.net'));
      const second = sender.send(outgoing('two@example.net'));
      await hold.until(2);
      hold.releaseOne();
      await Promise.race([first, second]);
      sender.close();
      await upstream.untilOpenConnections(1);
      assert.equal(upstream.received.length, 1);
      hold.releaseOne();
      const outcomes = (await Promise.all([first, second])).map((a) => a.recipients[0]?.outcome);
      assert.deepEqual(outcomes, ['delivered', 'delivered']);
      await upstream.untilOpenConnections(0);
      assert.equal((await sender.send(outgoing())).recipients[0]?.outcome, 'deferred', 'a closed sender sends nothing more');
      assert.equal(upstream.connectionsAccepted, 2);
    } finally {
      hold.releaseAll();
      sender.close();
      await upstream.close();
    }
  });

  test('with credentials configured, sends nothing to a smarthost that does not offer AUTH', BOUNDED, async () => {
    const upstream = await startUpstream({ noAuth: true });
    const sender = senderFor(upstream, {}, { auth: { user: 'relay', pass: 's3cret' } });
    try {
      const attempt = await sender.send(outgoing());
      assert.equal(attempt.recipients[0]?.outcome, 'deferred');
      assert.equal(upstream.received.length, 0);
    } finally {
      sender.close();
      await upstream.close();
    }
  });

  test('normalises envelope addresses exactly as nodemailer sendMail() does', () => {
    const cases: Array<[string, string[]]> = [
      ['a@example.com', ['b@example.net']],
      ['', ['b@example.net', 'c+tag@mail.example.net']],
      ['first.last@example.com', ['b@example.net', 'b@example.net']],
      ['a@EXAMPLE.com', ['B@Example.NET']],
      ['a@example.com', ['user@bücher.example', 'jörg@bücher.example']],
      ['a@example.com', ['"john doe"@example.net', 'x..y@example.net', '.x@example.net']],
      ['bounce=x=y@example.com', ['o\'neil@example.net', 'a%b@example.net', 'a@[192.0.2.1]']],
      ['a@-bad-.example', ['b@example.net.', 'b@exa_mple.net']],
    ];
    for (const [sender, recipients] of cases) {
      const expected = new MimeNode().setEnvelope({ from: sender === '' ? false : sender, to: recipients }).getEnvelope();
      assert.deepEqual(normaliseEnvelope(new MimeNode(), sender, recipients), { from: expected.from, to: expected.to }, `${sender} ${recipients.join(' ')}`);
    }
  });
});
