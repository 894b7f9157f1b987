import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { ALICE, gatewayWithUpstream } from '../helpers/gateway.js';
import { sampleMessage, splitReceivedHeader } from '../helpers/messages.js';
import { authenticatedClient, SmtpTestClient } from '../helpers/smtpClient.js';
import type { ReceivedMessage } from '../helpers/upstream.js';

/**
 * Injection through the things a client names: CR, LF or other control characters in the EHLO
 * name, MAIL/RCPT parameters, addresses and AUTH user names must never become a header line in
 * what Postern relays nor a command in what it says to the next hop; and a header the client
 * writes that claims to be Postern's own trace is not relayed.
 */

const EVIL = 'injected-victim@example.net';

describe('injection attacks', () => {
  // The user is named in the Received header, so a user name that could carry a line break
  // would have a header to land in.
  const fixture = gatewayWithUpstream('received: { includeAuthUser: true }');

  /** Every header line of what the upstream got ends in CRLF, and no header field was injected. */
  function assertCleanHeaderBlock(message: ReceivedMessage): void {
    const raw = message.raw.toString('latin1');
    const block = raw.slice(0, raw.indexOf('\r\n\r\n') + 2);
    assert.ok(!/\r(?!\n)|(?<!\r)\n/.test(block), `a bare CR or LF in the relayed header block: ${JSON.stringify(block)}`);
    assert.ok(!/[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]/.test(block), `a control character in the relayed header block: ${JSON.stringify(block)}`);
    assert.ok(!/^X-Injected/im.test(block), `an injected header field was relayed: ${JSON.stringify(block)}`);
    assert.equal((block.match(/^Received:/gm) ?? []).length, 1, 'exactly one Received field, Postern\'s');
  }

  /** Sends one clean message in an authenticated session and returns what the upstream got. */
  async function relayOne(client: SmtpTestClient, subject: string, recipient = 'bob@example.net'): Promise<ReceivedMessage> {
    const before = fixture.upstream.messages.length;
    assert.equal((await client.command('MAIL FROM:<alice@example.com>')).code, 250);
    assert.equal((await client.command(`RCPT TO:<${recipient}>`)).code, 250);
    assert.equal((await client.data(sampleMessage(subject))).code, 250);
    const messages = await fixture.upstream.waitFor(before + 1);
    return messages.find((m) => m.raw.toString('latin1').includes(`Subject: ${subject}`))!;
  }

  function assertEvilNeverAsked(): void {
    assert.deepEqual(
      fixture.upstream.rcptSeen.filter((r) => r.address.includes('injected') || r.from.includes('injected')),
      [],
      'an injected address reached the upstream',
    );
  }

  for (const [name, ehloName] of [
    ['a bare CR and a header line', 'evil.example\rX-Injected: yes'],
    ['NUL, ESC and DEL', 'evil\x00.exa\x1bmple\x7f'],
    ['a tab and a comment that would close the trace clause', 'evil.example\t) by postern.test (Postern'],
    ['8-bit bytes', 'ev\xe9il.example'],
  ] as const) {
    test(`an EHLO name with ${name} reaches the Received header only in a safe form`, async () => {
      const client = await SmtpTestClient.connect(fixture.postern.submissionPort);
      await client.greeting();
      await client.ehlo('client.example.test');
      await client.startTls();
      const ehlo = await client.command(`EHLO ${ehloName}`);
      if (ehlo.code !== 250) {
        // Refused outright is safe too; the session needs a valid name to go on.
        assert.ok(ehlo.code >= 500, ehlo.last);
        assert.equal((await client.ehlo('client.example.test')).code, 250);
      }
      assert.equal((await client.authPlain(ALICE.user, ALICE.password)).code, 235);
      const message = await relayOne(client, `ehlo ${name}`);
      await client.quit();
      assertCleanHeaderBlock(message);
      const { received } = splitReceivedHeader(message.raw);
      assert.equal(received.split('by postern.test').length, 2, `the EHLO name forged a by clause: ${received}`);
      assert.match(received, /\r\n\tby postern\.test \(Postern\) with ESMTPSA id /);
    });
  }

  test('an EHLO name with a bare LF is two commands at most, neither of which reaches a header', async () => {
    const client = await SmtpTestClient.connect(fixture.postern.submissionPort);
    await client.greeting();
    await client.ehlo();
    await client.startTls();
    // smtp-server ends a command line at a bare LF too, so this is at most two commands of the
    // client's own session: EHLO and a line that is no command. A MAIL before AUTH marks the
    // end of their replies.
    client.write('EHLO evil.example\nX-Injected: yes\r\nMAIL FROM:<alice@example.com>\r\n');
    for (let reply = await client.read(); !reply.last.startsWith('530 5.7.0'); reply = await client.read()) {
      assert.ok(reply.code === 250 || reply.code >= 500, reply.last);
    }
    assert.equal((await client.ehlo('client.example.test')).code, 250);
    assert.equal((await client.authPlain(ALICE.user, ALICE.password)).code, 235);
    const message = await relayOne(client, 'ehlo bare LF');
    await client.quit();
    assertCleanHeaderBlock(message);
  });

  for (const [name, line] of [
    ['a bare CR in a MAIL parameter hiding a RCPT', `MAIL FROM:<alice@example.com> SIZE=10\rRCPT TO:<${EVIL}>`],
    ['a bare CR after the MAIL address', `MAIL FROM:<alice@example.com>\rRCPT TO:<${EVIL}>`],
    ['a bare CR in the MAIL BODY parameter', `MAIL FROM:<alice@example.com> BODY=8BITMIME\rRCPT TO:<${EVIL}>`],
    ['a NUL in a MAIL parameter', `MAIL FROM:<alice@example.com> SIZE=10\x00RCPT TO:<${EVIL}>`],
    ['a bare CR inside the sender address', `MAIL FROM:<alice@example.com\rRCPT TO:<${EVIL}>>`],
  ] as const) {
    test(`MAIL with ${name} never gives the upstream another recipient`, async () => {
      const client = await authenticatedClient(fixture.postern.submissionPort, ALICE);
      const reply = await client.command(line);
      if (reply.code === 250) {
        // Accepted as a sender with odd parameters: the transaction may go on, to bob only.
        const before = fixture.upstream.messages.length;
        assert.equal((await client.command('RCPT TO:<bob@example.net>')).code, 250);
        assert.equal((await client.data(sampleMessage(`mail ${name}`))).code, 250);
        const [message] = (await fixture.upstream.waitFor(before + 1)).slice(before);
        assert.equal(message!.from, 'alice@example.com');
        assert.deepEqual(message!.to, ['bob@example.net']);
      } else {
        assert.ok(reply.code >= 500, reply.last);
        assert.equal((await client.command('RSET')).code, 250);
      }
      const message = await relayOne(client, `after mail ${name}`);
      await client.quit();
      assert.equal(message.from, 'alice@example.com');
      assert.deepEqual(message.to, ['bob@example.net']);
      assertCleanHeaderBlock(message);
      assertEvilNeverAsked();
    });
  }

  for (const [name, line] of [
    ['a bare CR hiding a second RCPT', `RCPT TO:<bob@example.net>\rRCPT TO:<${EVIL}>`],
    ['a bare CR in a NOTIFY parameter', `RCPT TO:<bob@example.net> NOTIFY=NEVER\rRCPT TO:<${EVIL}>`],
    ['an ORCPT whose xtext decodes to a line break', `RCPT TO:<bob@example.net> ORCPT=rfc822;bob+0D+0ARCPT+20TO:<${EVIL}>`],
    ['a bare CR inside the address', `RCPT TO:<bob@example.net\rRCPT TO:<${EVIL}>>`],
    ['a control character inside the address', `RCPT TO:<b\x1bob@example.net>`],
  ] as const) {
    test(`RCPT with ${name} never gives the upstream another recipient`, async () => {
      const client = await authenticatedClient(fixture.postern.submissionPort, ALICE);
      assert.equal((await client.command('MAIL FROM:<alice@example.com>')).code, 250);
      const reply = await client.command(line);
      const before = fixture.upstream.messages.length;
      let recipients: string[] = [];
      if (reply.code === 250) {
        assert.equal((await client.data(sampleMessage(`rcpt ${name}`))).code, 250);
        const [message] = (await fixture.upstream.waitFor(before + 1)).slice(before);
        recipients = message!.to;
        assertCleanHeaderBlock(message!);
        // Accepted only as bob with odd parameters: nothing else may be in the envelope.
        assert.deepEqual(recipients, ['bob@example.net']);
      } else {
        assert.ok(reply.code >= 500, reply.last);
      }
      await client.command('RSET');
      await relayOne(client, `after rcpt ${name}`);
      await client.quit();
      assertEvilNeverAsked();
    });
  }

  test('a parameter of an extension Postern does not offer is refused 555 5.5.4, never silently accepted', async () => {
    const client = await authenticatedClient(fixture.postern.submissionPort, ALICE);
    // REQUIRETLS (RFC 8689) and DSN (RFC 3461) are not offered: accepting them would promise
    // what delivery does not do. An unknown keyword is refused the same way (RFC 5321 §4.1.1.11).
    for (const line of ['MAIL FROM:<alice@example.com> REQUIRETLS', 'MAIL FROM:<alice@example.com> RET=HDRS', 'MAIL FROM:<alice@example.com> X-ROUTE=evil.example']) {
      assert.match((await client.command(line)).last, /^555 5\.5\.4 /, line);
    }
    // What the EHLO reply offers, and AUTH= (RFC 4954 §5), are taken.
    assert.equal((await client.command('MAIL FROM:<alice@example.com> SIZE=100 BODY=8BITMIME SMTPUTF8 AUTH=<>')).code, 250);
    for (const line of ['RCPT TO:<bob@example.net> NOTIFY=NEVER', 'RCPT TO:<bob@example.net> ORCPT=rfc822;bob@example.net', `RCPT TO:<bob@example.net> X-FORWARD=${EVIL}`]) {
      assert.match((await client.command(line)).last, /^555 5\.5\.4 /, line);
    }
    assert.equal((await client.command('RCPT TO:<bob@example.net>')).code, 250);
    const before = fixture.upstream.messages.length;
    assert.equal((await client.data(sampleMessage('after unsupported parameters'))).code, 250);
    const [message] = (await fixture.upstream.waitFor(before + 1)).slice(before);
    assert.deepEqual(message!.to, ['bob@example.net']);
    await client.quit();
    assertEvilNeverAsked();
  });

  for (const [name, user] of [
    ['CRLF and a MAIL command', 'alice\r\nMAIL FROM:<ceo@example.com>'],
    ['a trailing CRLF', 'alice\r\n'],
    ['a bare LF and a header line', 'alice\nX-Injected: yes'],
    ['a NUL', 'alice\x00'],
  ] as const) {
    test(`a user name with ${name} is refused at AUTH and gets no session`, async () => {
      const client = await SmtpTestClient.connect(fixture.postern.submissionPort);
      await client.greeting();
      await client.ehlo();
      await client.startTls();
      await client.ehlo();
      // PLAIN: the NUL variant is no user name PLAIN can carry (NUL separates its fields).
      // Refused either as malformed SASL data (smtp-server's 501) or as a wrong login (535).
      const refused = (reply: { code: number; last: string }) => assert.ok(reply.code === 501 || reply.code === 535, reply.last);
      if (!user.includes('\x00')) refused(await client.authPlain(user, ALICE.password));
      refused(await client.authLogin(user, ALICE.password));
      assert.match((await client.command('MAIL FROM:<alice@example.com>')).last, /^530 5\.7\.0 /);
      // The same session may still log in properly, and the message names only the real user.
      assert.equal((await client.authPlain(ALICE.user, ALICE.password)).code, 235);
      const message = await relayOne(client, `auth ${name}`);
      await client.quit();
      assertCleanHeaderBlock(message);
      assert.match(splitReceivedHeader(message.raw).received, /\(Authenticated sender: alice\)\r\n/);
      assertEvilNeverAsked();
    });
  }

  describe("a header claiming Postern's own trace", () => {
    for (const [name, header] of [
      ['a forged Authentication-Results for this host', 'Authentication-Results: postern.test; auth=pass smtp.auth=ceo@example.com'],
      ['a forged X-Postern field', 'X-Postern-Queue-ID: 01FORGED'],
    ] as const) {
      test(`${name} is not relayed`, async () => {
        const before = fixture.upstream.messages.length;
        const client = await authenticatedClient(fixture.postern.submissionPort, ALICE);
        await client.command('MAIL FROM:<alice@example.com>');
        await client.command('RCPT TO:<bob@example.net>');
        const reply = await client.data(`${header}\r\n${sampleMessage(`forged ${name}`)}`);
        assert.equal(reply.last, '550 5.7.1 Message carries a header field only Postern may write');
        const marker = await relayOne(client, `marker forged ${name}`);
        await client.quit();
        await sleep(100);
        assert.equal(fixture.upstream.messages.length, before + 1, 'only the marker was relayed');
        assert.ok(!marker.raw.toString('latin1').includes('01FORGED'));
      });
    }

    test('a Received field by this Postern (mail forwarded back through it) is relayed as trace, below Postern\'s new one', async () => {
      const client = await authenticatedClient(fixture.postern.submissionPort, ALICE);
      const before = fixture.upstream.messages.length;
      await client.command('MAIL FROM:<alice@example.com>');
      await client.command('RCPT TO:<bob@example.net>');
      const trace = 'Received: from laptop.example.com by postern.test (Postern) with ESMTPSA id 01EARLIER; Mon, 30 Nov 2026 09:00:00 +0000';
      assert.equal((await client.data(`${trace}\r\n${sampleMessage('forwarded back')}`)).code, 250);
      await client.quit();
      const [message] = (await fixture.upstream.waitFor(before + 1)).slice(before);
      const { received, rest } = splitReceivedHeader(message!.raw);
      assert.doesNotMatch(received, /01EARLIER/, 'Postern writes its own trace on top');
      assert.ok(rest.toString('latin1').startsWith(`${trace}\r\n`));
    });

    test('a Received field written by another host is relayed unchanged', async () => {
      const client = await authenticatedClient(fixture.postern.submissionPort, ALICE);
      const before = fixture.upstream.messages.length;
      await client.command('MAIL FROM:<alice@example.com>');
      await client.command('RCPT TO:<bob@example.net>');
      const trace = 'Received: from laptop.example.com by mua-relay.example.com with ESMTP id 01OTHER; Mon, 30 Nov 2026 09:00:00 +0000';
      assert.equal((await client.data(`${trace}\r\n${sampleMessage('other host trace')}`)).code, 250);
      await client.quit();
      const [message] = (await fixture.upstream.waitFor(before + 1)).slice(before);
      assert.ok(splitReceivedHeader(message!.raw).rest.toString('latin1').startsWith(`${trace}\r\n`));
    });
  });
});
