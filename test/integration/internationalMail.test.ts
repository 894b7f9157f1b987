import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { TestGateway } from '../helpers/gateway.js';
import { ALICE } from '../helpers/gateway.js';
import { splitReceivedHeader } from '../helpers/messages.js';
import { startWorldAndGateway, waitForEmptyQueue, type MxWorldOptions } from '../helpers/mxWorld.js';
import { authenticatedClient } from '../helpers/smtpClient.js';
import type { ReceivedMessage } from '../helpers/upstream.js';

/**
 * Internationalised mail end to end (RFC 6531 SMTPUTF8, RFC 6532 UTF-8 header fields, RFC 6152
 * 8BITMIME): what a client may submit, what a next hop offering the extensions receives, and
 * what happens when the next hop does not offer them. Postern never sends 8-bit data or UTF-8
 * to a server that did not say it takes them; it does not convert either (the message is DKIM
 * signed as queued), so such a message fails with the RFC 6531 / RFC 3463 status and the
 * sender gets a bounce that says which extension was missing.
 */

const MODERN_MX = '127.0.0.3';
const LEGACY_MX = '127.0.0.2';

/** modern.intl.test's MX offers everything; legacy.intl.test's offers neither SMTPUTF8 nor 8BITMIME. */
const WORLD: MxWorldOptions = {
  zone: {
    zone: 'intl.test',
    mx: {
      'modern.intl.test': [{ preference: 10, exchange: 'mx.modern.intl.test' }],
      'legacy.intl.test': [{ preference: 10, exchange: 'mx.legacy.intl.test' }],
    },
    hosts: { 'mx.modern.intl.test': [MODERN_MX], 'mx.legacy.intl.test': [LEGACY_MX] },
  },
  hosts: { [MODERN_MX]: {}, [LEGACY_MX]: { without: ['SMTPUTF8', '8BITMIME'] } },
};

function message(options: { subject?: string; body?: string; to?: string } = {}): string {
  return [
    'From: Alice <alice@example.com>',
    `To: ${options.to ?? 'someone@intl.test'}`,
    `Subject: ${options.subject ?? 'plain ASCII'}`,
    'Date: Mon, 30 Nov 2026 09:00:00 +0000',
    `Message-ID: <${Math.random().toString(36).slice(2)}@example.com>`,
    'MIME-Version: 1.0',
    'Content-Type: text/plain; charset=utf-8',
    'Content-Transfer-Encoding: 8bit',
    '',
    options.body ?? 'Nothing but ASCII here.',
    '',
  ].join('\r\n');
}

/** Submits as alice with these MAIL FROM parameters; resolves with the final reply line. */
async function submitWith(postern: TestGateway, mailParams: string, recipients: string[], data: string): Promise<string> {
  const client = await authenticatedClient(postern.submissionPort, ALICE);
  try {
    const mail = await client.command(`MAIL FROM:<alice@example.com>${mailParams ? ` ${mailParams}` : ''}`);
    assert.equal(mail.code, 250, mail.last);
    for (const recipient of recipients) {
      const rcpt = await client.command(`RCPT TO:<${recipient}>`);
      assert.equal(rcpt.code, 250, rcpt.last);
    }
    const reply = await client.data(Buffer.from(data, 'utf8'));
    assert.equal(reply.code, 250, reply.last);
    return reply.last;
  } finally {
    await client.quit();
  }
}

/** The client's bytes as the next hop got them, without Postern's Received header. */
function clientBytes(received: ReceivedMessage): string {
  return splitReceivedHeader(received.raw).rest.toString('utf8');
}

/** The bounce's delivery-status fields of interest, read from the raw report. */
function bounceFields(report: ReceivedMessage): { status: string | undefined; diagnostic: string | undefined; recipient: string | undefined } {
  const text = report.raw.toString('utf8').replace(/\r\n[ \t]+/g, ' ');
  return {
    status: /^Status: (\S+)/m.exec(text)?.[1],
    diagnostic: /^Diagnostic-Code: (.*)$/m.exec(text)?.[1],
    recipient: /^Final-Recipient: (.*)$/m.exec(text)?.[1],
  };
}

describe('internationalised mail: submission', () => {
  test('EHLO offers SMTPUTF8 and 8BITMIME; a UTF-8 address without SMTPUTF8 is refused 553 5.6.7, with it accepted', async (t) => {
    const { postern } = await startWorldAndGateway(t, WORLD);
    const client = await authenticatedClient(postern.submissionPort, ALICE);
    t.after(() => client.quit());
    const ehlo = await client.ehlo();
    assert.ok(ehlo.lines.includes('SMTPUTF8'), ehlo.lines.join(' | '));
    assert.ok(ehlo.lines.includes('8BITMIME'), ehlo.lines.join(' | '));

    assert.equal((await client.command('MAIL FROM:<alice@example.com>')).code, 250);
    const refused = await client.command('RCPT TO:<jörg@modern.intl.test>');
    assert.equal(refused.code, 553);
    assert.match(refused.last, /^553 5\.6\.7 /);
    assert.equal((await client.command('RSET')).code, 250);

    assert.equal((await client.command('MAIL FROM:<alice@example.com> SMTPUTF8')).code, 250);
    assert.equal((await client.command('RCPT TO:<jörg@modern.intl.test>')).code, 250);
  });
});

describe('internationalised mail: a next hop that offers SMTPUTF8 and 8BITMIME', () => {
  test('UTF-8 addresses, header fields and body arrive intact, announced with SMTPUTF8 and BODY=8BITMIME', async (t) => {
    const { world, postern } = await startWorldAndGateway(t, WORLD);
    const data = message({ to: 'Jörg <jörg@modern.intl.test>', subject: 'Grüße aus Zürich', body: 'Schöne Grüße, 你好.' });
    await submitWith(postern, 'SMTPUTF8 BODY=8BITMIME', ['jörg@modern.intl.test'], data);

    const [received] = await world.hosts[MODERN_MX]!.waitFor(1);
    assert.deepEqual(received!.to, ['jörg@modern.intl.test']);
    assert.equal(received!.mailParams.SMTPUTF8, true);
    assert.equal(received!.mailParams.BODY, '8BITMIME');
    assert.equal(clientBytes(received!), data, 'the bytes are the client’s, unconverted');
  });

  test('UTF-8 in the header fields alone (ASCII envelope) is still sent with SMTPUTF8 (RFC 6531 section 3.4)', async (t) => {
    const { world, postern } = await startWorldAndGateway(t, WORLD);
    const data = message({ to: 'bob@modern.intl.test', subject: 'Réunion à 10 h' });
    await submitWith(postern, 'SMTPUTF8 BODY=8BITMIME', ['bob@modern.intl.test'], data);

    const [received] = await world.hosts[MODERN_MX]!.waitFor(1);
    assert.equal(received!.mailParams.SMTPUTF8, true, `MAIL FROM parameters: ${JSON.stringify(received!.mailParams)}`);
    assert.equal(clientBytes(received!), data);
  });

  test('an 8-bit body from a client that left out BODY=8BITMIME goes out with BODY=8BITMIME', async (t) => {
    const { world, postern } = await startWorldAndGateway(t, WORLD);
    const data = message({ to: 'bob@modern.intl.test', body: 'café crème' });
    await submitWith(postern, '', ['bob@modern.intl.test'], data);

    const [received] = await world.hosts[MODERN_MX]!.waitFor(1);
    assert.equal(received!.mailParams.BODY, '8BITMIME');
    assert.equal(received!.mailParams.SMTPUTF8, undefined, 'the client did not ask for SMTPUTF8');
  });
});

describe('internationalised mail: a next hop without SMTPUTF8 and 8BITMIME', () => {
  test('a UTF-8 recipient is not sent there: bounced 5.6.7, naming the missing extension', async (t) => {
    const { world, postern } = await startWorldAndGateway(t, WORLD);
    await submitWith(postern, 'SMTPUTF8 BODY=8BITMIME', ['jörg@legacy.intl.test'], message({ to: 'jörg@legacy.intl.test' }));

    const [bounce] = await world.mailbox.waitFor(1);
    await waitForEmptyQueue(postern);
    const report = bounceFields(bounce!);
    assert.equal(report.status, '5.6.7');
    assert.match(report.diagnostic ?? '', /SMTPUTF8 is required/);
    assert.match(report.recipient ?? '', /jörg@legacy\.intl\.test/);
    assert.equal(world.hosts[LEGACY_MX]!.rcptSeen.length, 0, 'not even the envelope went there');
    assert.equal(world.hosts[LEGACY_MX]!.messages.length, 0);
  });

  test('UTF-8 header fields of an SMTPUTF8 message: bounced 5.6.9', async (t) => {
    const { world, postern } = await startWorldAndGateway(t, WORLD);
    await submitWith(postern, 'SMTPUTF8', ['bob@legacy.intl.test'], message({ to: 'bob@legacy.intl.test', subject: 'Réunion' }));

    const [bounce] = await world.mailbox.waitFor(1);
    await waitForEmptyQueue(postern);
    assert.equal(bounceFields(bounce!).status, '5.6.9');
    assert.equal(world.hosts[LEGACY_MX]!.messages.length, 0);
  });

  test('an 8-bit body: bounced 5.6.3, while the same message to a modern next hop is delivered', async (t) => {
    const { world, postern } = await startWorldAndGateway(t, WORLD);
    const data = message({ to: 'bob@legacy.intl.test, carol@modern.intl.test', body: 'café crème' });
    await submitWith(postern, 'BODY=8BITMIME', ['bob@legacy.intl.test', 'carol@modern.intl.test'], data);

    const [delivered] = await world.hosts[MODERN_MX]!.waitFor(1);
    const [bounce] = await world.mailbox.waitFor(1);
    await waitForEmptyQueue(postern);
    assert.deepEqual(delivered!.to, ['carol@modern.intl.test']);
    const report = bounceFields(bounce!);
    assert.equal(report.status, '5.6.3');
    assert.match(report.diagnostic ?? '', /8BITMIME is required/);
    assert.match(report.recipient ?? '', /bob@legacy\.intl\.test/);
    assert.equal(world.hosts[LEGACY_MX]!.messages.length, 0);
  });

  test('UTF-8 header fields from a client that did not ask for SMTPUTF8 are 8-bit data all the same: bounced 5.6.3', async (t) => {
    const { world, postern } = await startWorldAndGateway(t, WORLD);
    await submitWith(postern, '', ['bob@legacy.intl.test'], message({ to: 'bob@legacy.intl.test', subject: 'Réunion' }));

    const [bounce] = await world.mailbox.waitFor(1);
    await waitForEmptyQueue(postern);
    assert.equal(bounceFields(bounce!).status, '5.6.3');
    assert.equal(world.hosts[LEGACY_MX]!.messages.length, 0);
  });

  test('a message that only declared SMTPUTF8 and BODY=8BITMIME but is ASCII is delivered, without either parameter', async (t) => {
    const { world, postern } = await startWorldAndGateway(t, WORLD);
    const data = message({ to: 'bob@legacy.intl.test' });
    await submitWith(postern, 'SMTPUTF8 BODY=8BITMIME', ['bob@legacy.intl.test'], data);

    const [received] = await world.hosts[LEGACY_MX]!.waitFor(1);
    await waitForEmptyQueue(postern);
    assert.equal(clientBytes(received!), data);
    assert.deepEqual(received!.mailParams, {}, 'no parameter the server did not offer');
    assert.equal(world.mailbox.messages.length, 0, 'nothing bounced');
  });
});
