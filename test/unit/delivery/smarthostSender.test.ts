import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { describe, test } from 'node:test';
import type { RelayTarget as SmarthostConfig } from '../../../src/delivery/smarthostSender.js';
import { SmarthostSender, addressKey, type OutgoingMessage } from '../../../src/delivery/smarthostSender.js';
import { silentLogger } from '../../../src/util/logger.js';
import { startUpstream, type UpstreamOptions } from './upstream.js';

const BODY = Buffer.from('Subject: direct\r\n\r\nbody\r\n');

function outgoing(recipients: string[]): OutgoingMessage {
  return { id: '06DQDPN80094K2Y8', sender: 'a@example.com', recipients, message: () => Readable.from([BODY]), size: BODY.length };
}

async function sendOnce(upstreamOptions: UpstreamOptions, recipients: string[], smarthost: Partial<SmarthostConfig> = {}) {
  const upstream = await startUpstream(upstreamOptions);
  const sender = new SmarthostSender({ host: '127.0.0.1', port: upstream.port, tls: 'none', verifyCertificate: true, ...smarthost }, silentLogger());
  try {
    return { attempt: await sender.send(outgoing(recipients)), upstream };
  } finally {
    sender.close();
    await upstream.close();
  }
}

describe('the smarthost sender', () => {
  test('reports each refused recipient by its own reply when every recipient is refused', async () => {
    const { attempt, upstream } = await sendOnce(
      { refuseRecipient: (a) => (a.startsWith('hard') ? { code: 550, text: '5.1.1 Unknown' } : { code: 451, text: '4.7.1 Greylisted' }) },
      ['hard@example.net', 'soft@example.net'],
    );
    assert.deepEqual(
      attempt.recipients.map((r) => [r.address, r.outcome]),
      [
        ['hard@example.net', 'failed'],
        ['soft@example.net', 'deferred'],
      ],
    );
    assert.match(attempt.recipients[0]!.reply, /^550 5\.1\.1 Unknown/);
    assert.match(attempt.recipients[1]!.reply, /^451 4\.7\.1 Greylisted/);
    assert.equal(upstream.received.length, 0);
  });

  test('fails every recipient when the message is refused with 5xx after DATA', async () => {
    const { attempt } = await sendOnce({ refuseData: () => ({ code: 554, text: '5.7.1 Spam' }) }, ['b@example.net', 'c@example.net']);
    assert.deepEqual(attempt.recipients.map((r) => r.outcome), ['failed', 'failed']);
    assert.match(attempt.recipients[0]!.reply, /^554 5\.7\.1 Spam/);
  });

  test('defers every recipient when the message is refused with 4xx after DATA', async () => {
    const { attempt } = await sendOnce({ refuseData: () => ({ code: 452, text: '4.3.1 Out of storage' }) }, ['b@example.net', 'c@example.net']);
    assert.deepEqual(attempt.recipients.map((r) => r.outcome), ['deferred', 'deferred']);
  });

  test('speaks TLS from the first byte when the smarthost uses implicit TLS', async () => {
    const { attempt, upstream } = await sendOnce({ implicitTls: true }, ['b@example.net'], { tls: 'implicit', verifyCertificate: false });
    assert.deepEqual(attempt.recipients.map((r) => r.outcome), ['delivered']);
    assert.equal(upstream.received[0]?.secure, true);
  });

  test('does not trust a self-signed smarthost certificate when verification is on', async () => {
    const { attempt, upstream } = await sendOnce({ implicitTls: true }, ['b@example.net'], { tls: 'implicit', verifyCertificate: true });
    assert.deepEqual(attempt.recipients.map((r) => r.outcome), ['deferred']);
    assert.equal(upstream.received.length, 0);
  });

  test('matches recipients the way nodemailer reports them back (case and IDN domains)', () => {
    assert.equal(addressKey('user@EXAMPLE.net'), addressKey('user@example.net'));
    assert.equal(addressKey('user@bücher.example'), addressKey('user@xn--bcher-kva.example'));
    assert.equal(addressKey('"john doe"@example.net'), addressKey('john doe@example.net'));
    assert.notEqual(addressKey('User@example.net'), addressKey('user@example.net'));
  });
});
