import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ALICE, gatewayWithUpstream } from '../helpers/gateway.js';
import { sampleMessage } from '../helpers/messages.js';
import { SmtpTestClient, authenticatedClient } from '../helpers/smtpClient.js';

describe('message intake limits', () => {
  const fixture = gatewayWithUpstream('limits: { maxMessageSize: 10KiB, maxRecipients: 3, maxConnections: 50, maxConnectionsPerIp: 4 }');

  test('EHLO advertises the size limit', async () => {
    const client = await authenticatedClient(fixture.postern.submissionPort, ALICE);
    const ehlo = await client.ehlo();
    assert.ok(ehlo.lines.includes('SIZE 10240'), ehlo.lines.join(' | '));
    await client.quit();
  });

  test('a message over the size limit gets 552 5.3.4 and is not relayed; the session goes on', async () => {
    const client = await authenticatedClient(fixture.postern.submissionPort, ALICE);
    await client.command('MAIL FROM:<alice@example.com>');
    await client.command('RCPT TO:<bob@example.net>');
    const big = sampleMessage('too big') + 'x'.repeat(76).concat('\r\n').repeat(200);
    const reply = await client.data(big);
    assert.equal(reply.last, '552 5.3.4 Message size exceeds the limit of 10240 bytes');
    assert.equal((await client.command('NOOP')).code, 250, 'the session is still usable');
    await client.quit();
  });

  test('a declared SIZE over the limit is refused at MAIL', async () => {
    const client = await authenticatedClient(fixture.postern.submissionPort, ALICE);
    const reply = await client.command('MAIL FROM:<alice@example.com> SIZE=20000');
    assert.equal(reply.code, 552);
    assert.match(reply.last, /^552 5\.3\.4 /);
    await client.quit();
  });

  test('recipients past the limit get 452 4.5.3 and the accepted ones still get the message', async () => {
    const before = fixture.upstream.messages.length;
    const client = await authenticatedClient(fixture.postern.submissionPort, ALICE);
    await client.command('MAIL FROM:<alice@example.com>');
    for (const rcpt of ['a@example.net', 'b@example.net', 'c@example.net']) {
      assert.equal((await client.command(`RCPT TO:<${rcpt}>`)).code, 250);
    }
    const fourth = await client.command('RCPT TO:<d@example.net>');
    assert.equal(fourth.last, '452 4.5.3 Too many recipients, at most 3 per message');
    assert.equal((await client.data(sampleMessage('three recipients'))).code, 250);
    await client.quit();
    const messages = await fixture.upstream.waitFor(before + 1);
    assert.deepEqual(messages[before]!.to, ['a@example.net', 'b@example.net', 'c@example.net']);
  });

  for (const [name, payload] of [
    ['bare LF', 'Subject: smuggle\r\n\r\nfirst line\nsecond line\r\n'],
    ['bare CR', 'Subject: smuggle\r\n\r\nfirst line\rsecond line\r\n'],
    ['a smuggled end of data with bare LF', 'Subject: outer\r\n\r\nouter\n.\nMAIL FROM:<ceo@example.com>\r\n'],
  ] as const) {
    test(`a message with ${name} gets 554 5.6.0 and nothing is relayed`, async () => {
      const before = fixture.upstream.messages.length;
      const client = await authenticatedClient(fixture.postern.submissionPort, ALICE);
      await client.command('MAIL FROM:<alice@example.com>');
      await client.command('RCPT TO:<bob@example.net>');
      await client.command('DATA');
      client.write(`${payload}\r\n.\r\n`);
      const reply = await client.read();
      assert.equal(reply.last, '554 5.6.0 Message contains a bare CR or LF; lines must end with CRLF');
      // A clean message afterwards proves the session is intact and gives the queue a marker.
      await client.command('MAIL FROM:<alice@example.com>');
      await client.command('RCPT TO:<bob@example.net>');
      assert.equal((await client.data(sampleMessage('marker'))).code, 250);
      await client.quit();
      const messages = await fixture.upstream.waitFor(before + 1);
      await new Promise((resolve) => setTimeout(resolve, 200));
      assert.equal(messages.length, before + 1, 'only the clean message reached the upstream');
      assert.match(messages[before]!.raw.toString(), /Subject: marker/);
    });
  }

  test('connections past the per-address limit get 421 4.7.0', async () => {
    const open: SmtpTestClient[] = [];
    for (let i = 0; i < 4; i++) {
      const client = await SmtpTestClient.connect(fixture.postern.submissionPort);
      assert.equal((await client.greeting()).code, 220);
      open.push(client);
    }
    const fifth = await SmtpTestClient.connect(fixture.postern.submissionPort);
    const reply = await fifth.greeting();
    assert.equal(reply.last, '421 4.7.0 Too many connections from your address, try again later');
    fifth.destroy();
    for (const client of open) await client.quit();
    // Slots are given back when sessions end.
    await new Promise((resolve) => setTimeout(resolve, 100));
    const again = await SmtpTestClient.connect(fixture.postern.submissionPort);
    assert.equal((await again.greeting()).code, 220);
    await again.quit();
  });
});
