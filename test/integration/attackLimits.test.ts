import assert from 'node:assert/strict';
import { cp, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, test } from 'node:test';
import { ALICE, gatewayWithUpstream, startTestGateway } from '../helpers/gateway.js';
import { sampleMessage } from '../helpers/messages.js';
import { SmtpTestClient, authenticatedClient } from '../helpers/smtpClient.js';
import { startUpstream } from '../helpers/upstream.js';

/**
 * Resource attacks: over-long lines, oversized and lying messages, mail loops, clients that
 * hold a connection open without finishing anything, and floods of connections from one address.
 */

// Larger than the 256 KiB header block Postern keeps, so that limit can be reached on its own.
const SHIPPED_POLICIES = resolve(import.meta.dirname, '../../policies');
const MAX_SIZE = 512 * 1024;
// Short timeouts so idle and slow clients are cut off within seconds.
const LIMITS = `limits: { maxMessageSize: ${MAX_SIZE}, maxConnectionsPerIp: 3, idleTimeout: 1500ms, dataTimeout: 2s, tlsTimeout: 2s }`;

/** A session from its own loopback source address (see SmtpTestClient.connect). */
function connectFrom(port: number, localAddress: string, implicitTls = false): Promise<SmtpTestClient> {
  return SmtpTestClient.connect(port, { implicitTls, localAddress });
}

/** Resolves once the server has closed the connection; rejects past `timeoutMs` (only to end a hung test). */
async function closedBy(client: SmtpTestClient, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!client.isClosed) {
    if (Date.now() > deadline) throw new Error('the server did not close the connection');
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** Reads replies until the connection closes; the last one seen. */
async function lastReplyBeforeClose(client: SmtpTestClient): Promise<string | undefined> {
  let last: string | undefined;
  for (;;) {
    try {
      last = (await client.read(10_000)).last;
    } catch {
      return last;
    }
  }
}

describe('limits under attack', () => {
  const fixture = gatewayWithUpstream(LIMITS);

  /** Nothing new reached the upstream: waits long enough for a wrongly queued message to arrive first. */
  async function assertNothingRelayedSince(count: number) {
    await new Promise((resolve) => setTimeout(resolve, 400));
    assert.equal(fixture.upstream.messages.length, count, 'nothing reached the upstream');
  }

  /** A transaction ready for DATA. */
  async function readyForData(): Promise<SmtpTestClient> {
    const client = await authenticatedClient(fixture.postern.submissionPort, ALICE);
    assert.equal((await client.command('MAIL FROM:<alice@example.com>')).code, 250);
    assert.equal((await client.command('RCPT TO:<bob@example.net>')).code, 250);
    return client;
  }

  /** Sends a clean marker message on an open session; proves the session survived and lets a test wait for the queue. */
  async function marker(client: SmtpTestClient, subject: string) {
    assert.equal((await client.command('MAIL FROM:<alice@example.com>')).code, 250);
    assert.equal((await client.command('RCPT TO:<marker@example.net>')).code, 250);
    assert.equal((await client.data(sampleMessage(subject))).code, 250);
  }

  describe('line lengths (RFC 5321 §4.5.3.1)', () => {
    test('command lines past 512 octets are parsed, and each part is held to its own limit', async () => {
      // §4.5.3.1.4 allows extensions to raise the 512-octet limit (AUTH needs up to 12288,
      // RFC 4954 §4), so a longer line is read whole and judged by what it says; it is never
      // split into two commands.
      const before = fixture.upstream.messages.length;
      const client = await authenticatedClient(fixture.postern.submissionPort, ALICE);
      assert.equal((await client.command(`NOOP ${'x'.repeat(600)}`)).code, 250);
      const longLocal = `${'a'.repeat(600)}@example.net`;
      assert.equal((await client.command('MAIL FROM:<alice@example.com>')).code, 250);
      // smtp-server's parser or Postern's length check, whichever sees it first.
      assert.match((await client.command(`RCPT TO:<${longLocal}>`)).last, /^501 5\.(1\.3|5\.4) /);
      // A line whose 513th octet would begin a second command if the server cut lines at 512.
      const smuggle = `RCPT TO:<bob@example.net> ${'X'.repeat(512 - 'RCPT TO:<bob@example.net> '.length)}RCPT TO:<victim@other.example>`;
      // smtp-server ignores RCPT parameters it does not know; the address is all Postern keeps.
      const smuggled = await client.command(smuggle);
      assert.ok(smuggled.code === 250 || smuggled.code >= 500, smuggled.last);
      assert.equal((await client.command('NOOP')).code, 250, 'one reply per line: nothing was split off');
      if (smuggled.code !== 250) assert.equal((await client.command('RCPT TO:<bob@example.net>')).code, 250);
      assert.equal((await client.data(sampleMessage('after long lines'))).code, 250);
      await client.quit();
      const messages = await fixture.upstream.waitFor(before + 1);
      assert.deepEqual(messages[before]!.to, ['bob@example.net']);
      assert.ok(!fixture.upstream.rcptSeen.some((r) => r.address === 'victim@other.example'));
    });

    test('a command line past 16 KiB closes the session with 421, and the gateway keeps serving', async () => {
      const client = await authenticatedClient(fixture.postern.submissionPort, ALICE);
      await client.command('MAIL FROM:<alice@example.com>');
      client.write(`RCPT TO:<bob@example.net> ${'X'.repeat(20 * 1024)}\r\n`);
      assert.equal(await lastReplyBeforeClose(client), '421 4.4.2 Error: Command line too long');
      await closedBy(client);
      const next = await authenticatedClient(fixture.postern.submissionPort, ALICE);
      assert.equal((await next.command('NOOP')).code, 250);
      await next.quit();
    });

    test('a text line past 1000 octets in DATA is accepted and relayed unchanged, not split or truncated', async () => {
      // RFC 5321 §4.5.3.1.6 sets 1000 octets, and §4.5.3.1 asks receivers to accept longer
      // lines where they can. Postern relays the message byte for byte (splitting it would
      // break its DKIM signature), so a long line passes as written; the size limit bounds it.
      const before = fixture.upstream.messages.length;
      const client = await readyForData();
      const longLine = `long:${'y'.repeat(5000)}`;
      const body = `From: alice@example.com\r\nSubject: long line\r\n\r\n${longLine}\r\nend\r\n`;
      assert.equal((await client.data(body)).code, 250);
      await client.quit();
      const messages = await fixture.upstream.waitFor(before + 1);
      assert.ok(messages[before]!.raw.toString('latin1').endsWith(`\r\n\r\n${longLine}\r\nend\r\n`), 'the long line arrived whole');
    });
  });

  describe('message size', () => {
    test('a header block past its limit gets 552 5.3.4 and nothing is relayed', async () => {
      const before = fixture.upstream.messages.length;
      const client = await readyForData();
      // Under the message size limit, over the 256 KiB of header block kept for policy rules.
      const headers = `X-Pad: ${'h'.repeat(990)}\r\n`.repeat(300);
      const reply = await client.data(`From: alice@example.com\r\n${headers}\r\nbody\r\n`);
      assert.equal(reply.last, '552 5.3.4 Message header block exceeds 262144 bytes');
      await client.quit();
      await assertNothingRelayedSince(before);
    });

    test('a message that declares a small SIZE and sends a big one gets 552 5.3.4; nothing is relayed and the session goes on', async () => {
      const before = fixture.upstream.messages.length;
      const client = await authenticatedClient(fixture.postern.submissionPort, ALICE);
      assert.equal((await client.command('MAIL FROM:<alice@example.com> SIZE=100')).code, 250);
      assert.equal((await client.command('RCPT TO:<bob@example.net>')).code, 250);
      const big = sampleMessage('lying size') + `${'z'.repeat(998)}\r\n`.repeat(600);
      assert.equal((await client.data(big)).last, `552 5.3.4 Message size exceeds the limit of ${MAX_SIZE} bytes`);
      await marker(client, 'after the lie');
      await client.quit();
      const messages = await fixture.upstream.waitFor(before + 1);
      await assertNothingRelayedSince(before + 1);
      assert.deepEqual(messages[before]!.to, ['marker@example.net'], 'only the marker was relayed');
    });

    test('a message a byte over the limit is refused and one at the limit is accepted', async () => {
      const before = fixture.upstream.messages.length;
      const client = await authenticatedClient(fixture.postern.submissionPort, ALICE);
      const head = 'From: alice@example.com\r\nSubject: exact\r\n\r\n';
      // DATA's own CRLF before the final dot is not part of the message (RFC 5321 §4.1.1.4).
      const exact = head + 'e'.repeat(MAX_SIZE - head.length - 2) + '\r\n';
      assert.equal(Buffer.byteLength(exact), MAX_SIZE);
      for (const [body, code] of [
        [`${exact.slice(0, -2)}e\r\n`, 552],
        [exact, 250],
      ] as const) {
        await client.command('MAIL FROM:<alice@example.com>');
        await client.command('RCPT TO:<bob@example.net>');
        await client.command('DATA');
        client.write(`${body}.\r\n`);
        assert.equal((await client.read()).code, code);
      }
      await client.quit();
      await fixture.upstream.waitFor(before + 1);
      await assertNothingRelayedSince(before + 1);
    });

    for (const size of ['-1', 'abc', '99999999999999999999999', `${MAX_SIZE + 1}`]) {
      test(`MAIL FROM with SIZE=${size} is refused`, async () => {
        const client = await authenticatedClient(fixture.postern.submissionPort, ALICE);
        const reply = await client.command(`MAIL FROM:<alice@example.com> SIZE=${size}`);
        assert.ok(reply.code >= 500, reply.last);
        assert.equal((await client.command('RCPT TO:<bob@example.net>')).code, 503, 'no transaction was opened');
        await client.quit();
      });
    }
  });

  describe('mail loops (RFC 5321 §6.3)', () => {
    const received = (n: number) =>
      Array.from({ length: n }, (_, i) => `Received: from hop${i}.example by hop${i + 1}.example; Mon, 30 Nov 2026 09:00:00 +0000\r\n`).join('');

    test('a message with 50 Received headers gets 554 5.4.6 and is not relayed', async () => {
      const before = fixture.upstream.messages.length;
      const client = await readyForData();
      const reply = await client.data(received(50) + sampleMessage('looping'));
      assert.equal(reply.last, '554 5.4.6 Too many hops: 50 or more Received header fields, a mail loop?');
      await client.quit();
      await assertNothingRelayedSince(before);
    });

    test('a message with 49 Received headers is relayed with Postern\'s own on top, and Received lines in the body do not count', async () => {
      const before = fixture.upstream.messages.length;
      const client = await readyForData();
      const body = received(49) + sampleMessage('many hops') + received(60);
      assert.equal((await client.data(body)).code, 250);
      await client.quit();
      const messages = await fixture.upstream.waitFor(before + 1);
      const raw = messages[before]!.raw.toString('latin1');
      const headerBlock = raw.slice(0, raw.indexOf('\r\n\r\n'));
      assert.equal(headerBlock.match(/^Received:/gm)?.length, 50);
    });

    test('Received headers are counted whatever their case and folding', async () => {
      const before = fixture.upstream.messages.length;
      const client = await readyForData();
      const folded = Array.from({ length: 50 }, (_, i) => `${i % 2 ? 'RECEIVED' : 'received'}: from hop${i}.example\r\n\tby next.example\r\n`).join('');
      assert.match((await client.data(folded + sampleMessage('folded hops'))).last, /^554 5\.4\.6 /);
      await client.quit();
      await assertNothingRelayedSince(before);
    });
  });

  describe('clients that hold a connection', () => {
    test('a client idle after the greeting is closed with 421 4.4.2', async () => {
      const client = await connectFrom(fixture.postern.submissionPort, '127.0.0.40');
      assert.equal((await client.greeting()).code, 220);
      assert.match((await lastReplyBeforeClose(client)) ?? '', /^421 4\.[47]\.\d /);
      await closedBy(client);
    });

    test('a client idle in the middle of a transaction is closed with 421 4.4.2 and nothing is relayed', async () => {
      const before = fixture.upstream.messages.length;
      const client = await readyForData();
      assert.match((await lastReplyBeforeClose(client)) ?? '', /^421 4\.4\.2 /);
      await closedBy(client);
      await assertNothingRelayedSince(before);
    });

    test('a client dripping a command one byte at a time before TLS is closed at the first deadline it passes', async () => {
      const client = await connectFrom(fixture.postern.submissionPort, '127.0.0.41');
      assert.equal((await client.greeting()).code, 220);
      const drip = dripper(client, `EHLO ${'slow'.repeat(200)}.example\r\n`);
      try {
        // The command-line deadline (idle timeout, 1.5s) or the TLS deadline (2s), whichever comes first.
        assert.match((await lastReplyBeforeClose(client)) ?? '', /^421 4\.4\.2 Timeout|^421 4\.7\.0 TLS was not started in time/);
        await closedBy(client);
      } finally {
        clearInterval(drip);
      }
    });

    test(
      'a client dripping a command one byte at a time after TLS is closed within the idle timeout',
      async () => {
        const client = await connectFrom(fixture.postern.submissionsPort, '127.0.0.42', true);
        assert.equal((await client.greeting()).code, 220);
        const drip = dripper(client, `NOOP ${'z'.repeat(1000)}\r\n`);
        try {
          const closing = lastReplyBeforeClose(client);
          // Bounded only to end the test: four idle timeouts, well before the line could end (1000 bytes at 4/s).
          const verdict = await Promise.race([closing.then(() => 'closed'), new Promise((r) => setTimeout(() => r('still open'), 6000))]);
          assert.equal(verdict, 'closed', 'the server ends a session whose command never ends');
        } finally {
          clearInterval(drip);
          client.destroy();
        }
      },
    );

    test('a client dripping its message one byte at a time is closed at the DATA deadline and nothing is relayed', async () => {
      const before = fixture.upstream.messages.length;
      const client = await readyForData();
      assert.equal((await client.command('DATA')).code, 354);
      const drip = dripper(client, sampleMessage('slowloris').repeat(20));
      try {
        assert.equal(await lastReplyBeforeClose(client), '421 4.4.2 Timeout while receiving the message, closing connection');
        await closedBy(client);
      } finally {
        clearInterval(drip);
      }
      await assertNothingRelayedSince(before);
    });
  });

  test('connections past the per-address limit get 421 4.7.0 on either listener, and the admitted ones still work', async () => {
    const before = fixture.upstream.messages.length;
    const source = '127.0.0.50';
    const admitted: SmtpTestClient[] = [];
    for (let i = 0; i < 3; i++) {
      const client = await connectFrom(fixture.postern.submissionPort, source);
      assert.equal((await client.greeting()).code, 220);
      admitted.push(client);
    }
    const refused: string[] = [];
    for (let i = 0; i < 5; i++) {
      const extra = await connectFrom(fixture.postern.submissionPort, source);
      refused.push(await lastReplyBeforeClose(extra).then((r) => r ?? 'closed without a reply'));
    }
    assert.deepEqual(refused, Array(5).fill('421 4.7.0 Too many connections from your address, try again later'));
    // The implicit-TLS listener counts against the same limit: the socket is ended before or in the handshake.
    const viaTls = await connectFrom(fixture.postern.submissionsPort, source, true).then(
      async (client) => (await lastReplyBeforeClose(client)) ?? 'closed without a reply',
      () => 'closed without a reply',
    );
    assert.ok(viaTls === 'closed without a reply' || viaTls.startsWith('421 4.7.0'), viaTls);
    // Another address is not affected.
    const other = await connectFrom(fixture.postern.submissionPort, '127.0.0.51');
    assert.equal((await other.greeting()).code, 220);
    await other.quit();
    // An admitted connection still goes all the way: STARTTLS, AUTH, a message.
    const first = admitted[0]!;
    await first.ehlo();
    assert.equal((await first.startTls()).code, 220);
    await first.ehlo();
    assert.equal((await first.authPlain(ALICE.user, ALICE.password)).code, 235);
    await marker(first, 'admitted under the cap');
    for (const client of admitted) await client.quit();
    const messages = await fixture.upstream.waitFor(before + 1);
    assert.deepEqual(messages[before]!.to, ['marker@example.net']);
  });
});

/** Writes `text` one byte every 250 ms; the interval to clear. */
function dripper(client: SmtpTestClient, text: string): NodeJS.Timeout {
  let offset = 0;
  const timer = setInterval(() => {
    if (offset >= text.length || client.isClosed) return clearInterval(timer);
    client.write(text[offset++]!);
  }, 250);
  return timer;
}

describe('a header crafted against an operator\'s pattern', () => {
  test('cannot stall the gateway: an exponentially backtracking pattern answers at once, and other sessions are served meanwhile', async (t) => {
    // The shipped policy plus a headers rule whose pattern backtracks exponentially: ^(a+)+$.
    const policies = await mkdtemp(join(tmpdir(), 'postern-redos-'));
    await cp(SHIPPED_POLICIES, policies, { recursive: true });
    await writeFile(
      join(policies, '60-subject.yaml'),
      'rules:\n  - name: no-aaa\n    type: headers\n    params: { patterns: [{ header: Subject, match: "^(a+)+$", action: reject, text: "no screaming" }] }\n',
    );
    const upstream = await startUpstream();
    const postern = await startTestGateway({ upstreamPort: upstream.port, extraYaml: `policies: { dir: ${JSON.stringify(policies)} }` });
    t.after(async () => {
      await postern.dispose();
      await upstream.close();
      await rm(policies, { recursive: true, force: true });
    });
    const send = async (subject: string) => {
      const client = await authenticatedClient(postern.submissionPort, ALICE);
      assert.equal((await client.command('MAIL FROM:<alice@example.com>')).code, 250);
      assert.equal((await client.command('RCPT TO:<bob@example.net>')).code, 250);
      const reply = await client.data(sampleMessage(subject));
      await client.quit();
      return reply.last;
    };

    // Backtracking alone, 28 a's and a '!' take about 20 s of one core; 5,000 would never end.
    const crafted = send(`${'a'.repeat(5000)}!`);
    const bystander = send('an ordinary message at the same time');
    assert.match(await crafted, /^250 /, 'no match, decided');
    assert.match(await bystander, /^250 /);
    assert.equal(await send('a'.repeat(5000)), '550 5.7.1 no screaming', 'a real match is still a match');
    await upstream.waitFor(2);
  });
});
