import assert from 'node:assert/strict';
import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { ALICE, gatewayWithUpstream } from '../helpers/gateway.js';
import { sampleMessage } from '../helpers/messages.js';
import { authenticatedClient } from '../helpers/smtpClient.js';
import type { ReceivedMessage, Upstream } from '../helpers/upstream.js';

/**
 * Property-based attacks on one running gateway: random SMTP conversations (valid, invalid,
 * random bytes, huge lines, pipelined bursts) and random message bodies split at random TCP
 * boundaries. Postern must never crash, must answer only well-formed SMTP replies, and must
 * never answer 250 to a message it then fails to relay byte for byte. fast-check prints the
 * seed and path of a failing run; `{ seed, path }` in the options replays it.
 */

/** One well-formed reply line: a 2xx-5xx code, then a space or hyphen and text (RFC 5321 §4.2). */
const REPLY_LINE = /^[2-5][0-5][0-9]([ -][\x20-\x7e]*)?$/;
/** A session that does not end within this long is hung: fail it rather than wait forever. */
const SESSION_BOUND_MS = 20_000;

const fixture = gatewayWithUpstream();

/**
 * Writes each piece as its own write, then ends the conversation (closing any DATA and any
 * line left open) and collects every byte the server sends until it closes the connection.
 */
async function converse(socket: Socket, pieces: Buffer[], ending: string): Promise<string> {
  let received = '';
  socket.setEncoding('latin1');
  socket.on('data', (chunk: string) => (received += chunk));
  const closed = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`the session did not end within ${SESSION_BOUND_MS} ms; received so far: ${JSON.stringify(received.slice(-500))}`));
    }, SESSION_BOUND_MS);
    socket.once('close', () => {
      clearTimeout(timer);
      resolve();
    });
  });
  // The server may close first (e.g. after too many errors); writes after that are moot.
  socket.on('error', () => undefined);
  for (const piece of pieces) {
    if (socket.destroyed) break;
    socket.write(piece);
    await new Promise((resolve) => setImmediate(resolve));
  }
  if (!socket.destroyed) socket.write(ending);
  await closed;
  return received;
}

/** Every line the server sent is a well-formed reply line, and nothing is left unterminated. */
function assertWellFormedReplies(output: string): void {
  assert.ok(output === '' || output.endsWith('\r\n'), `the output ends mid-line: ${JSON.stringify(output.slice(-200))}`);
  for (const line of output.split('\r\n').slice(0, -1)) {
    assert.match(line, REPLY_LINE, `malformed reply line ${JSON.stringify(line)} in ${JSON.stringify(output.slice(0, 2000))}`);
  }
}

const commandLine = fc.constantFrom(
  'EHLO client.example.test',
  'HELO client.example.test',
  'EHLO',
  'NOOP',
  'RSET',
  'HELP',
  'VRFY alice',
  'EXPN staff',
  'MAIL FROM:<alice@example.com>',
  'MAIL FROM:<alice@example.com> SIZE=100 BODY=8BITMIME',
  'MAIL FROM:<alice@example.com> SIZE=99999999999999999999',
  'MAIL FROM:<>',
  'MAIL FROM:alice@example.com',
  'MAIL FROM:<alice@example.com> X-UNKNOWN=1',
  'RCPT TO:<bob@example.net>',
  'RCPT TO:<@relay.example:bob@example.net>',
  'RCPT TO:<bob%example.net@example.com>',
  'RCPT TO:<"bob@example.net"@example.com>',
  'RCPT TO:<bob@[127.0.0.1]>',
  'DATA',
  'BDAT 10 LAST',
  'AUTH PLAIN',
  'AUTH LOGIN',
  'AUTH CRAM-MD5',
  '*',
  'XCLIENT ADDR=10.0.0.1',
  'X',
  '',
  ' ',
  '.',
  'QUIT',
);

/** One write of a conversation: a line, random bytes, a huge line, or several lines at once. */
const conversationPiece: fc.Arbitrary<Buffer> = fc.oneof(
  { weight: 6, arbitrary: commandLine.map((line) => Buffer.from(`${line}\r\n`, 'latin1')) },
  { weight: 2, arbitrary: fc.uint8Array({ maxLength: 200 }).map((bytes) => Buffer.from(bytes)) },
  {
    weight: 1,
    arbitrary: fc
      .record({ prefix: fc.constantFrom('', 'EHLO ', 'MAIL FROM:<', 'RCPT TO:<', 'NOOP '), length: fc.integer({ min: 500, max: 40_000 }) })
      .map(({ prefix, length }) => Buffer.from(`${prefix}${'a'.repeat(length)}\r\n`, 'latin1')),
  },
  {
    weight: 2,
    arbitrary: fc.array(commandLine, { minLength: 2, maxLength: 8 }).map((lines) => Buffer.from(lines.map((l) => `${l}\r\n`).join(''), 'latin1')),
  },
);

/** Waits until the upstream has a message whose raw bytes contain `marker`; bounded. */
async function waitForMarked(upstream: Upstream, marker: string, timeoutMs = 15_000): Promise<ReceivedMessage> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const found = upstream.messages.find((m) => m.raw.includes(marker));
    if (found) return found;
    await upstream.waitFor(upstream.messages.length + 1, Math.max(1, deadline - Date.now())).catch(() => {
      throw new Error(`no message marked ${marker} reached the upstream in ${timeoutMs} ms`);
    });
  }
}

let healthChecks = 0;
/** A fresh authenticated session still gets a message through, end to end. */
async function assertStillServing(): Promise<void> {
  const { postern, upstream } = fixture;
  healthChecks += 1;
  const subject = `health-check-${healthChecks}-${Date.now()}`;
  const client = await authenticatedClient(postern.submissionPort, ALICE);
  try {
    assert.equal((await client.command('MAIL FROM:<alice@example.com>')).code, 250);
    assert.equal((await client.command('RCPT TO:<bob@example.net>')).code, 250);
    assert.equal((await client.data(sampleMessage(subject))).code, 250);
  } finally {
    await client.quit();
  }
  await waitForMarked(upstream, `Subject: ${subject}\r\n`);
}

/** A body fragment: text, the bytes smuggling plays with, or random bytes. */
const bodyPiece: fc.Arbitrary<string> = fc.oneof(
  { weight: 4, arbitrary: fc.string({ maxLength: 40 }).map((s) => s.replace(/[\r\n\0]/g, ' ')) },
  { weight: 4, arbitrary: fc.constant('\r\n') },
  { weight: 3, arbitrary: fc.constantFrom('.', '..', '\r\n.', '.\r\n', '\r\n.\r\n', '\r\n..\r\n', '\n', '\r', '\n.\n', '\r.\r', '\r\n\0.\r\n', '\0', '\t', ' ') },
  { weight: 1, arbitrary: fc.uint8Array({ maxLength: 30 }).map((bytes) => Buffer.from(bytes).toString('latin1')) },
  { weight: 1, arbitrary: fc.integer({ min: 900, max: 1100 }).map((n) => 'x'.repeat(n)) },
);

/** RFC 5321 §4.5.2: a line starting with "." gets another "." on the wire. */
function dotStuff(body: string): string {
  return body.replace(/(^|\r\n)\./g, '$1..');
}

describe('fuzzing the SMTP conversation and the DATA stream against one running gateway', () => {
  test('random unauthenticated conversations get only well-formed replies and never bring the gateway down', async () => {
    const { postern } = fixture;
    await fc.assert(
      fc.asyncProperty(fc.array(conversationPiece, { minLength: 1, maxLength: 12 }), async (pieces) => {
        const socket = netConnect({ host: '127.0.0.1', port: postern.submissionPort });
        await new Promise<void>((resolve, reject) => {
          socket.once('connect', resolve);
          socket.once('error', reject);
        });
        // Plaintext: STARTTLS is left out, since after its 220 the bytes are TLS, not replies.
        const output = await converse(socket, pieces, '\r\nQUIT\r\n');
        assertWellFormedReplies(output);
        assert.match(output, /^220 /, 'the session opens with the greeting');
      }),
      { numRuns: 50, endOnFailure: true, includeErrorInReport: true },
    );
    await assertStillServing();
  });

  test('random authenticated conversations get only well-formed replies and never bring the gateway down', async () => {
    const { postern } = fixture;
    const auth = Buffer.from(`\0${ALICE.user}\0${ALICE.password}`).toString('base64');
    await fc.assert(
      fc.asyncProperty(fc.array(conversationPiece, { minLength: 1, maxLength: 12 }), async (pieces) => {
        const socket = tlsConnect({ host: '127.0.0.1', port: postern.submissionsPort, rejectUnauthorized: false, servername: 'localhost' });
        await new Promise<void>((resolve, reject) => {
          socket.once('secureConnect', resolve);
          socket.once('error', reject);
        });
        const opening = Buffer.from(`EHLO fuzz.example.test\r\nAUTH PLAIN ${auth}\r\n`);
        // The ending closes a DATA left open (its message may be relayed or refused) and any open line.
        const output = await converse(socket, [opening, ...pieces], '\r\n.\r\nQUIT\r\n');
        assertWellFormedReplies(output);
        assert.match(output, /\r\n235 /, 'the pipelined AUTH succeeded, so the pieces ran authenticated');
      }),
      { numRuns: 40, endOnFailure: true, includeErrorInReport: true },
    );
    await assertStillServing();
  });

  test('a message whose chunks split CRLF between CR and LF is relayed whole (found by the property below)', async () => {
    const { postern, upstream } = fixture;
    const marker = `split-crlf-${Date.now()}`;
    const message = Buffer.from(`From: Alice <alice@example.com>\r\nTo: Bob <bob@example.net>\r\nSubject: ${marker}\r\n\r\nline one\r\nline two\r\n`);
    const wire = Buffer.concat([message, Buffer.from('.\r\n')]);
    const client = await authenticatedClient(postern.submissionPort, ALICE);
    try {
      assert.equal((await client.command('MAIL FROM:<alice@example.com>')).code, 250);
      assert.equal((await client.command('RCPT TO:<bob@example.net>')).code, 250);
      assert.equal((await client.command('DATA')).code, 354);
      // Every write ends just after a CR, so each CRLF straddles two writes.
      let start = 0;
      for (let cr = wire.indexOf('\r'); cr !== -1; cr = wire.indexOf('\r', cr + 1)) {
        client.write(wire.subarray(start, cr + 1));
        start = cr + 1;
        await new Promise((resolve) => setImmediate(resolve));
      }
      client.write(wire.subarray(start));
      assert.equal((await client.read()).code, 250);
    } finally {
      await client.quit();
    }
    const received = await waitForMarked(upstream, `Subject: ${marker}\r\n`);
    assert.ok(received.raw.subarray(received.raw.length - message.length).equals(message), `got ${JSON.stringify(received.raw.toString('latin1'))}`);
  });

  test('a random body in random chunks is relayed byte for byte when accepted, and not at all when refused', async () => {
    const { postern, upstream } = fixture;
    const refusedMarkers: string[] = [];
    let run = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.array(bodyPiece, { maxLength: 40 }),
        fc.array(fc.integer({ min: 1, max: 64 }), { minLength: 1, maxLength: 20 }),
        async (pieces, chunkSizes) => {
          run += 1;
          const marker = `fuzz-body-${run}-${Date.now()}`;
          const headers = ['From: Alice <alice@example.com>', 'To: Bob <bob@example.net>', `Subject: ${marker}`, 'Date: Mon, 30 Nov 2026 09:00:00 +0000', `Message-ID: <${marker}@example.com>`, '', ''].join('\r\n');
          // A message ends with CRLF before the terminating dot (RFC 5321 §4.1.1.4).
          const message = Buffer.from(`${headers}${pieces.join('')}\r\n`, 'latin1');
          const wire = Buffer.concat([Buffer.from(dotStuff(message.toString('latin1')), 'latin1'), Buffer.from('.\r\n')]);

          const client = await authenticatedClient(postern.submissionPort, ALICE);
          try {
            assert.equal((await client.command('MAIL FROM:<alice@example.com>')).code, 250);
            assert.equal((await client.command('RCPT TO:<bob@example.net>')).code, 250);
            assert.equal((await client.command('DATA')).code, 354);
            let offset = 0;
            for (let i = 0; offset < wire.length; i++) {
              const size = chunkSizes[i % chunkSizes.length]!;
              client.write(wire.subarray(offset, offset + size));
              offset += size;
              await new Promise((resolve) => setImmediate(resolve));
            }
            const reply = await client.read(SESSION_BOUND_MS);
            assert.ok(reply.code === 250 || (reply.code >= 400 && reply.code < 600), `unexpected answer to the message: ${reply.last}`);
            if (reply.code === 250) {
              const received = await waitForMarked(upstream, `Subject: ${marker}\r\n`);
              assert.deepEqual(received.to, ['bob@example.net']);
              assert.ok(received.raw.length >= message.length, 'the upstream received fewer bytes than were accepted');
              assert.ok(
                received.raw.subarray(received.raw.length - message.length).equals(message),
                `the upstream's copy does not end with the bytes sent:\n sent ${JSON.stringify(message.toString('latin1'))}\n got  ${JSON.stringify(received.raw.toString('latin1'))}`,
              );
            } else {
              refusedMarkers.push(marker);
            }
          } finally {
            await client.quit();
          }
        },
      ),
      { numRuns: 50, endOnFailure: true, includeErrorInReport: true },
    );
    // Once a message sent after every refused one has arrived, any refused one that were going
    // to be relayed would have been queued before it.
    await assertStillServing();
    for (const marker of refusedMarkers) {
      assert.equal(upstream.messages.filter((m) => m.raw.includes(`Subject: ${marker}\r\n`)).length, 0, `refused message ${marker} reached the upstream`);
    }
  });
});
