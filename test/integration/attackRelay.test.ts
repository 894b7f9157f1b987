import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ALICE, gatewayWithUpstream } from '../helpers/gateway.js';
import { sampleMessage } from '../helpers/messages.js';
import { SmtpTestClient, authenticatedClient } from '../helpers/smtpClient.js';

/**
 * Open-relay attacks: recipient forms that some mailer once read as routing. Without AUTH none
 * of them gets anywhere; with AUTH each is either refused or relayed to exactly the address the
 * client wrote, never re-interpreted into another destination.
 */

/** Recipient forms an attacker uses to make a relay route mail elsewhere. */
const ROUTING_FORMS = [
  ['the percent hack', 'user%other.example@postern.test'],
  ['a source route', '@relay.example:user@other.example'],
  ['a source route through several hosts', '@relay.example,@hop.example:user@other.example'],
  ['a bang path', 'other.example!user'],
  ['a bang path with a local domain', 'other.example!user@postern.test'],
  ['a quoted local part holding an @', '"user@other"@example.com'],
  ['a quoted local part holding a percent', '"user%other.example"@postern.test'],
  ['an address literal', 'user@[192.0.2.1]'],
  ['an IPv6 address literal', 'user@[IPv6:2001:db8::1]'],
  ['postmaster without a domain', 'postmaster'],
  ['the null path', ''],
  ['two @ signs', 'user@other.example@postern.test'],
  ['a comma list', 'user@postern.test,victim@other.example'],
] as const;

describe('open relay attempts', () => {
  const fixture = gatewayWithUpstream();

  /** Waits long enough for a wrongly queued message to have been delivered, then reads the upstream. */
  async function upstreamAfterDeliveryWindow() {
    await new Promise((resolve) => setTimeout(resolve, 500));
    return { rcpts: fixture.upstream.rcptSeen.map((r) => r.address), messages: fixture.upstream.messages.length };
  }

  describe('without AUTH', () => {
    for (const [name, rcpt] of ROUTING_FORMS) {
      test(`${name} is relayed neither in plaintext nor after STARTTLS nor on implicit TLS`, async () => {
        const before = { rcpts: fixture.upstream.rcptSeen.map((r) => r.address), messages: fixture.upstream.messages.length };
        // Plaintext: MAIL is refused until STARTTLS, so RCPT is out of sequence.
        const plain = await SmtpTestClient.connect(fixture.postern.submissionPort);
        await plain.greeting();
        await plain.ehlo();
        assert.equal((await plain.command('MAIL FROM:<alice@example.com>')).last, '530 5.7.0 Must issue a STARTTLS command first');
        // Out of sequence (503), or refused for its syntax first (501): either way no transaction.
        assert.match((await plain.command(`RCPT TO:<${rcpt}>`)).last, /^50[13] /);
        assert.equal((await plain.command('DATA')).code, 503);
        await plain.quit();

        // After STARTTLS but without AUTH, and on the implicit-TLS listener: 530 Authentication required.
        for (const client of [await startTlsWithoutAuth(), await implicitWithoutAuth()]) {
          assert.equal((await client.command('MAIL FROM:<alice@example.com>')).last, '530 5.7.0 Authentication required');
          assert.equal((await client.command('MAIL FROM:<>')).last, '530 5.7.0 Authentication required');
          const rcptReply = await client.command(`RCPT TO:<${rcpt}>`);
          assert.ok(rcptReply.code >= 500, `RCPT without a transaction: ${rcptReply.last}`);
          // Pipelined the way a spam tool sends it: nothing of it may open a transaction.
          client.write(`MAIL FROM:<alice@example.com>\r\nRCPT TO:<${rcpt}>\r\nDATA\r\n`);
          for (let i = 0; i < 3; i++) assert.ok((await client.read()).code >= 500);
          client.write(`${sampleMessage('relayed?')}\r\n.\r\n`);
          await client.quit();
        }
        const after = await upstreamAfterDeliveryWindow();
        assert.deepEqual(after, before, 'the upstream was asked nothing');
      });
    }
  });

  describe('with AUTH', () => {
    for (const [name, rcpt] of ROUTING_FORMS) {
      test(`${name} is refused with 5xx or relayed to exactly the address given, never re-routed`, async () => {
        const messagesBefore = fixture.upstream.messages.length;
        const rcptsBefore = fixture.upstream.rcptSeen.length;
        const client = await authenticatedClient(fixture.postern.submissionPort, ALICE);
        assert.equal((await client.command('MAIL FROM:<alice@example.com>')).code, 250);
        const reply = await client.command(`RCPT TO:<${rcpt}>`);
        // A marker recipient, so the transaction goes ahead whatever the reply to the attack form.
        assert.equal((await client.command('RCPT TO:<marker@example.net>')).code, 250);
        assert.equal((await client.data(sampleMessage(`with auth ${name}`))).code, 250);
        await client.quit();
        const [message] = (await fixture.upstream.waitFor(messagesBefore + 1)).slice(messagesBefore);
        const asked = fixture.upstream.rcptSeen.slice(rcptsBefore).map((r) => r.address);
        if (reply.code === 250) {
          // RFC 5321 §3.6.1 / §4.1.1.3: a source route is ignored; the mailbox is what remains.
          const expected = rcpt.startsWith('@') ? rcpt.slice(rcpt.indexOf(':') + 1) : rcpt;
          assert.deepEqual(message!.to, [expected, 'marker@example.net']);
          assert.deepEqual(asked, [expected, 'marker@example.net']);
        } else {
          assert.ok(reply.code >= 500 && reply.code < 600, `a clear refusal: ${reply.last}`);
          assert.match(reply.last, /^5\d\d 5\.\d\.\d+ \S/, 'with an enhanced status code and a text');
          assert.deepEqual(message!.to, ['marker@example.net']);
          assert.deepEqual(asked, ['marker@example.net']);
        }
        // Never to a relay host named in the route, never to the destination hidden in a local part.
        assert.ok(!asked.some((address) => /@(relay|hop)\.example$/.test(address)), asked.join(', '));
        if (!rcpt.startsWith('@')) assert.ok(!asked.includes('user@other.example') && !asked.includes('user@other'), asked.join(', '));
      });
    }

    test('the forms the gateway accepts are the ones documented: percent, bang with domain, address literals and source routes', async () => {
      const client = await authenticatedClient(fixture.postern.submissionPort, ALICE);
      await client.command('MAIL FROM:<alice@example.com>');
      const codes: Record<string, number> = {};
      for (const [, rcpt] of ROUTING_FORMS) codes[rcpt] = (await client.command(`RCPT TO:<${rcpt}>`)).code;
      await client.quit();
      assert.deepEqual(codes, {
        'user%other.example@postern.test': 250,
        '@relay.example:user@other.example': 250,
        '@relay.example,@hop.example:user@other.example': 250,
        'other.example!user': 501,
        'other.example!user@postern.test': 250,
        '"user@other"@example.com': 501,
        '"user%other.example"@postern.test': 553,
        'user@[192.0.2.1]': 250,
        'user@[IPv6:2001:db8::1]': 250,
        postmaster: 501,
        '': 501,
        'user@other.example@postern.test': 501,
        'user@postern.test,victim@other.example': 501,
      });
    });
  });

  async function startTlsWithoutAuth(): Promise<SmtpTestClient> {
    const client = await SmtpTestClient.connect(fixture.postern.submissionPort);
    await client.greeting();
    await client.ehlo();
    assert.equal((await client.startTls()).code, 220);
    await client.ehlo();
    return client;
  }

  async function implicitWithoutAuth(): Promise<SmtpTestClient> {
    const client = await SmtpTestClient.connect(fixture.postern.submissionsPort, { implicitTls: true });
    await client.greeting();
    await client.ehlo();
    return client;
  }
});
