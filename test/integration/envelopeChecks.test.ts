import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ALICE, gatewayWithUpstream } from '../helpers/gateway.js';
import { sampleMessage } from '../helpers/messages.js';
import { authenticatedClient } from '../helpers/smtpClient.js';

describe('the envelope a user may give', () => {
  const fixture = gatewayWithUpstream();

  test('a user may send only as an address its senders allow (550 5.7.1), whatever the case', async () => {
    const client = await authenticatedClient(fixture.postern.submissionPort, ALICE);
    assert.equal((await client.command('MAIL FROM:<ceo@example.com>')).last, '550 5.7.1 alice may not send as ceo@example.com');
    assert.equal((await client.command('MAIL FROM:<alice@example.com.evil.test>')).code, 550);
    assert.equal((await client.command('MAIL FROM:<Alice@Example.COM>')).code, 250);
    await client.quit();
  });

  test('a user may not send with the null sender', async () => {
    const client = await authenticatedClient(fixture.postern.submissionPort, ALICE);
    assert.equal((await client.command('MAIL FROM:<>')).last, '550 5.7.1 alice may not send with the null sender <>');
    await client.quit();
  });

  test('recipient forms that a later hop could read as routing are refused, and nothing is relayed to them', async () => {
    const client = await authenticatedClient(fixture.postern.submissionPort, ALICE);
    assert.equal((await client.command('MAIL FROM:<alice@example.com>')).code, 250);
    assert.equal((await client.command('RCPT TO:<x,bob@example.net>')).last, '501 5.1.3 Bad recipient address syntax');
    // smtp-server's own parser already refuses this one; a plainer quoted form reaches Postern's check.
    assert.equal((await client.command('RCPT TO:<"bob@evil.example"@example.net>')).code, 501);
    assert.equal((await client.command('RCPT TO:<"bob"@example.net>')).last, '553 5.1.3 Quoted local parts are not accepted');
    // RFC 5321 §3.6.1: a source route is ignored, never followed.
    assert.equal((await client.command('RCPT TO:<@relay.example:bob@example.net>')).code, 250);
    assert.equal((await client.command('RCPT TO:<carol@example.org>')).code, 250);
    assert.equal((await client.data(sampleMessage('clean recipient'))).code, 250);
    await client.quit();
    const [message] = await fixture.upstream.waitFor(1);
    assert.deepEqual(message!.to, ['bob@example.net', 'carol@example.org']);
  });

  test('an EHLO name that is not a domain reaches the Received header only in a safe form', async () => {
    const before = fixture.upstream.messages.length;
    const client = await authenticatedClient(fixture.postern.submissionPort, ALICE, { ehloName: 'a(b;c)))' });
    await client.command('MAIL FROM:<alice@example.com>');
    await client.command('RCPT TO:<bob@example.net>');
    assert.equal((await client.data(sampleMessage('odd helo'))).code, 250);
    await client.quit();
    const messages = await fixture.upstream.waitFor(before + 1);
    assert.match(messages[before]!.raw.toString(), /^Received: from a\?b\?c\?\?\? \(\[127\.0\.0\.1\]\)\r\n/);
  });

  describe('header blocks every hop must read alike', () => {
    async function submitRaw(body: string) {
      const client = await authenticatedClient(fixture.postern.submissionPort, ALICE);
      await client.command('MAIL FROM:<alice@example.com>');
      await client.command('RCPT TO:<bob@example.net>');
      const reply = await client.data(body);
      await client.quit();
      return reply;
    }

    test('a From: written with a space before the colon is still checked', async () => {
      const reply = await submitRaw('From : ceo@example.org\r\nFrom: alice@example.com\r\nSubject: two froms\r\n\r\nhi\r\n');
      assert.equal(reply.code, 550);
      assert.match(reply.last, /ceo@example\.org/);
    });

    test('a From: hidden past the header size limit is not let through: the message is refused', async () => {
      const padding = 'X-Pad: '.concat('a'.repeat(990), '\r\n').repeat(300);
      const reply = await submitRaw(`From: alice@example.com\r\n${padding}From: ceo@example.org\r\nSubject: padded\r\n\r\nhi\r\n`);
      assert.match(reply.last, /^552 5\.3\.4 Message header block exceeds/);
    });

    test('a line in the header block that is no field is refused, since parsers disagree on it', async () => {
      const reply = await submitRaw('From: alice@example.com\r\nnot a header line\r\nFrom: ceo@example.org\r\n\r\nhi\r\n');
      assert.match(reply.last, /^550 5\.6\.0 Malformed header/);
    });
  });
});
