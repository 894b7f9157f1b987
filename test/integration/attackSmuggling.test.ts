import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { ALICE, gatewayWithUpstream } from '../helpers/gateway.js';
import { sampleMessage } from '../helpers/messages.js';
import { authenticatedClient, type SmtpTestClient } from '../helpers/smtpClient.js';

/**
 * SMTP smuggling (SEC Consult, December 2023; CVE-2023-51764/51765/51766 and the NUL and mixed
 * variants published after): a receiver that ends DATA on something other than <CRLF>.<CRLF>
 * executes the rest of the message as commands, so one authenticated submission carries a
 * second, forged message. Postern must end DATA only on <CRLF>.<CRLF>, refuse a message that
 * holds a fake end (so no later hop can disagree on where it ends), and relay nothing smuggled.
 */

const BARE_LINE_ENDING = '554 5.6.0 Message contains a bare CR or LF; lines must end with CRLF';
const NUL_BYTE = '554 5.6.0 Message contains a NUL byte, which SMTP mail may not carry';
const SMUGGLED_RCPT = 'smuggled-victim@example.net';
const SMUGGLED_SENDER = 'ceo@example.com';

/** The fake end-of-data sequences: bare LF, bare CR, NUL and mixed forms around a dot. */
const FAKE_ENDS: ReadonlyArray<readonly [string, string]> = [
  ['<LF>.<LF>', '\n.\n'],
  ['<CR>.<CR>', '\r.\r'],
  ['<LF>.<CR><LF>', '\n.\r\n'],
  ['<CR><LF>.<LF>', '\r\n.\n'],
  ['<CR><LF>.<CR>', '\r\n.\r'],
  ['<LF>.<CR>', '\n.\r'],
  ['<CR>.<CR><LF>', '\r.\r\n'],
  ['<CR><LF>.<NUL><CR><LF>', '\r\n.\x00\r\n'],
  ['<CR><LF><NUL>.<CR><LF>', '\r\n\x00.\r\n'],
  ['<CR><LF>.<CR><CR><LF>', '\r\n.\r\r\n'],
  ['<CR><LF>.<LF><CR><LF>', '\r\n.\n\r\n'],
  ['<LF><CR>.<CR><LF>', '\n\r.\r\n'],
];

/** What a smuggler appends after the fake end: a whole second transaction with a forged sender. */
const SMUGGLED_TRANSACTION =
  `MAIL FROM:<${SMUGGLED_SENDER}>\r\n` +
  `RCPT TO:<${SMUGGLED_RCPT}>\r\n` +
  'DATA\r\n' +
  `From: CEO <${SMUGGLED_SENDER}>\r\n` +
  `To: <${SMUGGLED_RCPT}>\r\n` +
  'Subject: smuggled\r\n' +
  '\r\n' +
  'wire the money\r\n';

/** The meant message, the fake end, the smuggled transaction, then the one real <CRLF>.<CRLF>. */
function smugglingPayload(fakeEnd: string): { payload: Buffer; fakeAt: number } {
  const head = 'From: Alice <alice@example.com>\r\nTo: <bob@example.net>\r\nSubject: outer\r\n\r\nouter body';
  const payload = Buffer.from(`${head}${fakeEnd}${SMUGGLED_TRANSACTION}.\r\n`, 'latin1');
  return { payload, fakeAt: Buffer.byteLength(head, 'latin1') };
}

/** The ways one payload goes on the wire: whole, split at each boundary of the fake end, and a byte a write across it. */
function deliveries(payload: Buffer, fakeAt: number, fakeLength: number): Array<{ how: string; writes: Buffer[] }> {
  const ways = [{ how: 'in one write', writes: [payload] }];
  for (let cut = fakeAt; cut <= fakeAt + fakeLength; cut++) {
    ways.push({ how: `split at byte ${cut - fakeAt} of the sequence`, writes: [payload.subarray(0, cut), payload.subarray(cut)] });
  }
  const byteWise = [payload.subarray(0, fakeAt)];
  for (let i = fakeAt; i < fakeAt + fakeLength; i++) byteWise.push(payload.subarray(i, i + 1));
  byteWise.push(payload.subarray(fakeAt + fakeLength));
  ways.push({ how: 'a byte a write across the sequence', writes: byteWise });
  return ways;
}

/**
 * Writes each piece as its own TCP segment as far as the client can make it so (no Nagle, a
 * pause between writes); the assertions hold whichever way the pieces are coalesced.
 */
async function writeApart(client: SmtpTestClient, writes: Buffer[]): Promise<void> {
  client.tlsSocket?.setNoDelay(true);
  for (const [index, piece] of writes.entries()) {
    if (index > 0) await sleep(15);
    client.write(piece);
  }
}

describe('SMTP smuggling attacks', () => {
  const fixture = gatewayWithUpstream();

  /** Nothing the upstream was asked or given may carry the smuggled envelope. */
  function assertNothingSmuggledReached(): void {
    assert.deepEqual(
      fixture.upstream.rcptSeen.filter((r) => r.address === SMUGGLED_RCPT || r.from === SMUGGLED_SENDER),
      [],
      'the smuggled envelope reached the upstream as commands',
    );
    for (const message of fixture.upstream.messages) {
      const raw = message.raw.toString('latin1');
      assert.ok(!raw.includes(SMUGGLED_RCPT), `a relayed message carries the smuggled transaction: ${JSON.stringify(raw.slice(0, 400))}`);
      assert.ok(!/Subject: (outer|smuggled)/.test(raw), 'a refused message was relayed');
    }
  }

  /** Sends a clean marker and waits for it: what was queued before it had its chance to be delivered. */
  async function sendMarkerAndSettle(client: SmtpTestClient, subject: string): Promise<void> {
    const before = fixture.upstream.messages.length;
    assert.equal((await client.command('MAIL FROM:<alice@example.com>')).code, 250);
    assert.equal((await client.command('RCPT TO:<bob@example.net>')).code, 250);
    assert.equal((await client.data(sampleMessage(subject))).code, 250);
    await fixture.upstream.waitFor(before + 1);
    // A message queued earlier in the session is already being delivered by now; a short
    // settle lets a straggler arrive so the assertions below would see it.
    await sleep(200);
  }

  for (const [name, fakeEnd] of FAKE_ENDS) {
    test(`a fake end of data ${name} does not end DATA, in one write or split across writes, and nothing smuggled is relayed`, async () => {
      const client = await authenticatedClient(fixture.postern.submissionPort, ALICE);
      const noop = (await client.command('NOOP')).last;
      const { payload, fakeAt } = smugglingPayload(fakeEnd);
      for (const { how, writes } of deliveries(payload, fakeAt, Buffer.byteLength(fakeEnd, 'latin1'))) {
        assert.equal((await client.command('MAIL FROM:<alice@example.com>')).code, 250, how);
        assert.equal((await client.command('RCPT TO:<bob@example.net>')).code, 250, how);
        assert.equal((await client.command('DATA')).code, 354, how);
        await writeApart(client, writes);
        const reply = await client.read();
        // A NUL-only variant has no bare CR or LF: it is refused for the NUL, which a next hop
        // that drops NULs would otherwise read as <CRLF>.<CRLF>.
        const expected = /[\r\n]/.test(fakeEnd.replace(/\r\n/g, '')) ? BARE_LINE_ENDING : NUL_BYTE;
        assert.equal(reply.last, expected, `${how}: the whole payload is one refused message`);
        // Had any smuggled command run, its reply would come before this NOOP's.
        assert.equal((await client.command('NOOP')).last, noop, `${how}: no smuggled command was answered`);
      }
      await sendMarkerAndSettle(client, `marker ${name}`);
      await client.quit();
      assertNothingSmuggledReached();
    });
  }

  test('a lone dot as the first DATA line, dot-stuffed and split after either dot, is content and does not end DATA', async () => {
    const client = await authenticatedClient(fixture.postern.submissionPort, ALICE);
    const noop = (await client.command('NOOP')).last;
    // "..\r\n" is a line holding one dot (RFC 5321 §4.5.2). Arriving in a segment of its own,
    // its leading dot once looked like the terminator to smtp-server, and the rest of the
    // message ran as commands.
    const payload = Buffer.from(`..\r\n${SMUGGLED_TRANSACTION}.\r\n`, 'latin1');
    for (const cut of [1, 2, 3, 4]) {
      assert.equal((await client.command('MAIL FROM:<alice@example.com>')).code, 250);
      assert.equal((await client.command('RCPT TO:<bob@example.net>')).code, 250);
      assert.equal((await client.command('DATA')).code, 354);
      await writeApart(client, [payload.subarray(0, cut), payload.subarray(cut)]);
      // The first line "." is no header field, so the one message is refused as malformed.
      assert.match((await client.read()).last, /^550 5\.6\.0 Malformed header/, `cut at ${cut}`);
      assert.equal((await client.command('NOOP')).last, noop, `cut at ${cut}: exactly one reply to DATA`);
    }
    await sendMarkerAndSettle(client, 'marker lone dot');
    await client.quit();
    assertNothingSmuggledReached();
  });

  test('a clean message split inside its terminator is relayed once, byte for byte', async () => {
    const client = await authenticatedClient(fixture.postern.submissionPort, ALICE);
    const noop = (await client.command('NOOP')).last;
    const before = fixture.upstream.messages.length;
    const body = 'From: Alice <alice@example.com>\r\nTo: <bob@example.net>\r\nSubject: split terminator\r\n\r\nline\r\n..dot-stuffed\r\n';
    const payload = Buffer.from(`${body}.\r\n`, 'latin1');
    const cuts = [body.length - 2, body.length - 1, body.length, body.length + 1, body.length + 2];
    for (const cut of cuts) {
      assert.equal((await client.command('MAIL FROM:<alice@example.com>')).code, 250);
      assert.equal((await client.command(`RCPT TO:<bob${cut}@example.net>`)).code, 250);
      assert.equal((await client.command('DATA')).code, 354);
      await writeApart(client, [payload.subarray(0, cut), payload.subarray(cut)]);
      assert.equal((await client.read()).code, 250, `cut at ${cut}`);
      assert.equal((await client.command('NOOP')).last, noop, `cut at ${cut}: exactly one reply to DATA`);
    }
    await client.quit();
    const messages = (await fixture.upstream.waitFor(before + cuts.length)).slice(before);
    await sleep(200);
    assert.equal(fixture.upstream.messages.length, before + cuts.length, 'one relayed message per DATA');
    assert.deepEqual(messages.map((m) => m.to[0]).sort(), cuts.map((cut) => `bob${cut}@example.net`).sort());
    for (const message of messages) {
      assert.ok(message.raw.toString('latin1').endsWith('\r\n\r\nline\r\n.dot-stuffed\r\n'), JSON.stringify(message.raw.toString('latin1').slice(-60)));
    }
  });
});
