import assert from 'node:assert/strict';
import { createReadStream } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { describe, test } from 'node:test';
import { Splitter, type BodyChunk, type MimeNode } from 'mailsplit';
import { buildDsn, dsnStatus, dsnTransport, readHeaderBlock, type DsnInput } from '../../../src/delivery/dsn.js';

interface Part {
  node: MimeNode;
  body: Buffer;
}

/** Walks the message with mailsplit, as a mail reader would: every MIME node and its body. */
async function parse(message: Buffer): Promise<Part[]> {
  const parts: Part[] = [];
  const bodies = new Map<MimeNode, Buffer[]>();
  await pipeline(Readable.from([message]), new Splitter(), async function* (source: AsyncIterable<MimeNode | BodyChunk>) {
    for await (const item of source) {
      if (item.type === 'node') {
        bodies.set(item, []);
        parts.push({ node: item, body: Buffer.alloc(0) });
      } else if (item.type === 'body') {
        bodies.get(item.node)!.push(item.value);
      }
    }
  });
  return parts.map((p) => ({ node: p.node, body: Buffer.concat(bodies.get(p.node)!) }));
}

/** The fields of a message/delivery-status body: one map per block (per-message first), folding undone. */
function statusBlocks(body: Buffer): Array<Map<string, string>> {
  return body
    .toString('utf8')
    .replace(/(\r\n)+$/, '')
    .split('\r\n\r\n')
    .map((block) => {
      const fields = new Map<string, string>();
      for (const line of block.replace(/\r\n(?=[ \t])/g, '').split('\r\n')) {
        const colon = line.indexOf(':');
        fields.set(line.slice(0, colon), line.slice(colon + 1).trim());
      }
      return fields;
    });
}

function pinnedRandom(): (size: number) => Buffer {
  let counter = 0;
  return (size) => Buffer.alloc(size, ++counter);
}

function input(overrides: Partial<DsnInput> = {}): DsnInput {
  return {
    reportingMta: 'relay.example.com',
    queueId: 'Q1A2B3C4',
    arrivalDate: new Date(Date.UTC(2026, 0, 1, 9, 30, 0)),
    now: new Date(Date.UTC(2026, 0, 2, 12, 0, 5)),
    returnTo: 'alice@example.com',
    recipients: [
      {
        address: 'bob@example.net',
        action: 'failed',
        reply: '550 5.1.1 <bob@example.net>: no such user',
        remoteMta: 'mx1.example.net',
        lastAttemptAt: new Date(Date.UTC(2026, 0, 2, 11, 59, 0)),
      },
      { address: 'carol@example.invalid', action: 'failed', reply: 'example.invalid: domain does not exist (NXDOMAIN)' },
    ],
    originalHeaders: Buffer.from(
      'From: Alice <alice@example.com>\r\nTo: bob@example.net\r\nSubject: Quarterly figures\r\nMessage-ID: <m1.42@example.com>\r\n\r\n',
    ),
    random: pinnedRandom(),
    ...overrides,
  };
}

function lines(message: Buffer): string[] {
  return message.toString('latin1').split('\r\n');
}

describe('a bounce (failed delivery status notification)', () => {
  test('is addressed from the mailer daemon to the original sender and marked as an automatic reply', async () => {
    const [root] = await parse(buildDsn(input()));
    const h = root!.node.headers;
    assert.equal(h.getFirst('From'), 'Mail Delivery System <MAILER-DAEMON@relay.example.com>');
    assert.equal(h.getFirst('To'), '<alice@example.com>');
    assert.equal(h.getFirst('Subject'), 'Undelivered Mail Returned to Sender');
    assert.equal(h.getFirst('Date'), 'Fri, 02 Jan 2026 12:00:05 +0000');
    assert.match(h.getFirst('Message-ID'), /^<[0-9a-f]{32}@relay\.example\.com>$/);
    assert.equal(h.getFirst('Auto-Submitted'), 'auto-replied');
    assert.equal(h.getFirst('MIME-Version'), '1.0');
    assert.equal(h.getFirst('In-Reply-To'), '<m1.42@example.com>');
    assert.equal(h.getFirst('References'), '<m1.42@example.com>');
    assert.equal(root!.node.contentType, 'multipart/report');
    const contentType = root!.node.libmime.parseHeaderValue(h.getFirst('Content-Type'));
    assert.equal(contentType.params['report-type'], 'delivery-status');
    assert.ok(contentType.params.boundary);
  });

  test('has no In-Reply-To when the original message had no Message-ID', async () => {
    const [root] = await parse(buildDsn(input({ originalHeaders: Buffer.from('Subject: x\r\n\r\n') })));
    assert.equal(root!.node.headers.getFirst('In-Reply-To'), '');
    assert.equal(root!.node.headers.getFirst('References'), '');
  });

  test('holds a text explanation, a delivery-status report and the original headers, in that order', async () => {
    const parts = await parse(buildDsn(input()));
    assert.deepEqual(
      parts.map((p) => p.node.contentType),
      ['multipart/report', 'text/plain', 'message/delivery-status', 'text/rfc822-headers'],
    );
    const [, text, status, headers] = parts;
    assert.equal(text!.node.libmime.parseHeaderValue(text!.node.headers.getFirst('Content-Type')).params.charset, 'us-ascii');
    for (const part of [text!, status!, headers!]) assert.equal(part.node.headers.getFirst('Content-Transfer-Encoding'), '7bit');
    assert.equal(
      headers!.body.toString(),
      'From: Alice <alice@example.com>\r\nTo: bob@example.net\r\nSubject: Quarterly figures\r\nMessage-ID: <m1.42@example.com>\r\n',
    );
  });

  test('explains in its text part who was not reached and what each remote server said', async () => {
    const [, text] = await parse(buildDsn(input()));
    const body = text!.body.toString().replace(/\r\n\s*/g, ' ');
    assert.match(body, /<bob@example\.net>: delivery failed/);
    assert.match(body, /mx1\.example\.net said: 550 5\.1\.1 <bob@example\.net>: no such user/);
    assert.match(body, /<carol@example\.invalid>: delivery failed Reason: example\.invalid: domain does not exist \(NXDOMAIN\)/);
    assert.match(body, /no further attempts will be made/);
    assert.match(body, /Q1A2B3C4/);
  });

  test('reports the per-message fields and one block of fields per recipient', async () => {
    const [, , status] = await parse(buildDsn(input()));
    const [perMessage, bob, carol, ...rest] = statusBlocks(status!.body);
    assert.equal(rest.length, 0);
    assert.deepEqual(Object.fromEntries(perMessage!), {
      'Reporting-MTA': 'dns; relay.example.com',
      'X-Postern-Queue-ID': 'Q1A2B3C4',
      'Arrival-Date': 'Thu, 01 Jan 2026 09:30:00 +0000',
    });
    assert.deepEqual(Object.fromEntries(bob!), {
      'Final-Recipient': 'rfc822; bob@example.net',
      Action: 'failed',
      Status: '5.1.1',
      'Remote-MTA': 'dns; mx1.example.net',
      'Diagnostic-Code': 'smtp; 550 5.1.1 <bob@example.net>: no such user',
      'Last-Attempt-Date': 'Fri, 02 Jan 2026 11:59:00 +0000',
    });
    assert.deepEqual(Object.fromEntries(carol!), {
      'Final-Recipient': 'rfc822; carol@example.invalid',
      Action: 'failed',
      Status: '5.0.0',
      'Diagnostic-Code': 'X-Postern; example.invalid: domain does not exist (NXDOMAIN)',
    });
  });

  test('folds a long remote reply in the report and wraps it in the text, keeping every word', async () => {
    const reply = `550-5.7.1 ${'The message was refused by local policy for reasons too long to give here. '.repeat(12).trim()}`;
    const message = buildDsn(input({ recipients: [{ address: 'bob@example.net', action: 'failed', reply, remoteMta: 'mx1.example.net' }] }));
    const [, text, status] = await parse(message);
    const raw = status!.body.toString();
    const diagnostic = raw.slice(raw.indexOf('Diagnostic-Code:'));
    assert.ok(diagnostic.split('\r\n').filter((l) => l.startsWith(' ')).length >= 5, 'the field spans several lines');
    assert.equal(statusBlocks(status!.body)[1]!.get('Diagnostic-Code'), `smtp; ${reply}`);
    assert.equal(statusBlocks(status!.body)[1]!.get('Status'), '5.7.1');
    for (const line of text!.body.toString().split('\r\n')) assert.ok(line.length <= 76, `text line too long: ${line}`);
    assert.ok(text!.body.toString().replace(/\r\n\s*/g, ' ').includes(reply));
  });

  test('joins the lines of a multi-line SMTP reply', async () => {
    const reply = '550-5.1.1 The email account that you tried to reach does not exist.\r\n550 5.1.1 Please check the address.';
    const [, , status] = await parse(buildDsn(input({ recipients: [{ address: 'bob@example.net', action: 'failed', reply }] })));
    assert.equal(
      statusBlocks(status!.body)[1]!.get('Diagnostic-Code'),
      'smtp; 550-5.1.1 The email account that you tried to reach does not exist. 550 5.1.1 Please check the address.',
    );
  });

  test('uses CRLF only and keeps every line under 998 octets, whatever the reply and the original headers hold', () => {
    const hostileReply = `554 5.0.0 ${'x'.repeat(5000)} and\nbare\rline ends`;
    const longHeader = `X-Long: ${'y'.repeat(3000)}`;
    const message = buildDsn(
      input({
        recipients: [{ address: 'bob@example.net', action: 'failed', reply: hostileReply, remoteMta: 'mx1.example.net' }],
        originalHeaders: Buffer.from(`Subject: bare LF\n${longHeader}\nFrom: a@example.com\r\n\n`),
      }),
    );
    const text = message.toString('latin1');
    assert.equal(text.replace(/\r\n/g, '').match(/[\r\n]/), null, 'a CR or LF outside CRLF');
    for (const line of lines(message)) assert.ok(line.length < 998, `a line of ${line.length} octets`);
    assert.ok(message.every((b) => b < 0x80), 'the message is 7-bit');
    assert.match(text, /\r\nSubject: bare LF\r\nX-Long: y+\r\n y+/);
  });

  test('returns original headers carrying 8-bit bytes as they are, marked 8bit', async () => {
    const original = Buffer.concat([Buffer.from('Subject: '), Buffer.from('Grüße', 'latin1'), Buffer.from('\r\nFrom: a@example.com\r\n\r\n')]);
    const message = buildDsn(input({ originalHeaders: original }));
    const [, text, status, headers] = await parse(message);
    assert.equal(headers!.node.contentType, 'text/rfc822-headers');
    assert.equal(headers!.node.headers.getFirst('Content-Transfer-Encoding'), '8bit');
    assert.deepEqual(headers!.body, original.subarray(0, original.length - 2));
    assert.equal(text!.node.headers.getFirst('Content-Transfer-Encoding'), '7bit');
    assert.equal(status!.node.headers.getFirst('Content-Transfer-Encoding'), '7bit');
    assert.deepEqual(dsnTransport(input({ originalHeaders: original })), { eightBitMime: true, smtpUtf8: false });
    assert.deepEqual(dsnTransport(input()), { eightBitMime: false, smtpUtf8: false });
  });

  test('replaces non-ASCII characters of a reply so the report stays 7-bit', async () => {
    const message = buildDsn(input({ recipients: [{ address: 'bob@example.net', action: 'failed', reply: '550 5.1.1 Empfänger unbekannt' }] }));
    assert.ok(message.every((b) => b < 0x80));
    const [, , status] = await parse(message);
    assert.equal(statusBlocks(status!.body)[1]!.get('Diagnostic-Code'), 'smtp; 550 5.1.1 Empf?nger unbekannt');
  });

  test('is the same bytes for the same input and random source, and differs with another random source', () => {
    const first = buildDsn(input({ random: pinnedRandom() }));
    assert.deepEqual(buildDsn(input({ random: pinnedRandom() })), first);
    assert.notDeepEqual(buildDsn(input({ random: undefined })), first);
  });

  test('is refused for a message whose sender was empty, so bounces never loop', () => {
    assert.throws(() => buildDsn(input({ returnTo: '' })), RangeError);
    assert.throws(() => buildDsn(input({ recipients: [] })), RangeError);
    assert.throws(() => buildDsn(input({ returnTo: 'alice@example.com>\r\nBcc: x@example.org' })), TypeError);
  });

  test('reports an address with a quoted local part as it is', async () => {
    const address = '"john doe"@example.net';
    const [, , status] = await parse(buildDsn(input({ recipients: [{ address, action: 'failed', reply: '550 5.1.1 unknown' }] })));
    assert.equal(statusBlocks(status!.body)[1]!.get('Final-Recipient'), `rfc822; ${address}`);
  });
});

describe('a delay warning (delayed delivery status notification)', () => {
  const until = new Date(Date.UTC(2026, 0, 6, 9, 30, 0));
  const delayed = () =>
    input({
      recipients: [
        { address: 'dave@example.org', action: 'delayed', reply: '451 4.7.1 Greylisted, try again later', remoteMta: 'mx.example.org' },
      ],
      willRetryUntil: until,
    });

  test('says the message is still being retried, until when, and that nothing needs doing yet', async () => {
    const [root, text] = await parse(buildDsn(delayed()));
    assert.equal(root!.node.headers.getFirst('Subject'), 'Delayed Mail (still being retried)');
    const body = text!.body.toString().replace(/\r\n\s*/g, ' ');
    assert.match(body, /<dave@example\.org>: delivery delayed/);
    assert.match(body, /keep trying until Tue, 06 Jan 2026 09:30:00 \+0000/);
    assert.match(body, /do not need to do anything yet/);
    assert.match(body, /451 4\.7\.1 Greylisted, try again later/);
  });

  test('reports action delayed, the transient status and Will-Retry-Until', async () => {
    const [, , status] = await parse(buildDsn(delayed()));
    assert.deepEqual(Object.fromEntries(statusBlocks(status!.body)[1]!), {
      'Final-Recipient': 'rfc822; dave@example.org',
      Action: 'delayed',
      Status: '4.7.1',
      'Remote-MTA': 'dns; mx.example.org',
      'Diagnostic-Code': 'smtp; 451 4.7.1 Greylisted, try again later',
      'Will-Retry-Until': 'Tue, 06 Jan 2026 09:30:00 +0000',
    });
  });

  test('sent for mixed outcomes is a bounce that explains both the failed and the delayed recipients', async () => {
    const mixed = input({
      recipients: [
        { address: 'bob@example.net', action: 'failed', reply: '550 5.1.1 no such user' },
        { address: 'dave@example.org', action: 'delayed', reply: '421 4.4.2 connection dropped' },
      ],
      willRetryUntil: until,
    });
    const [root, text, status] = await parse(buildDsn(mixed));
    assert.equal(root!.node.headers.getFirst('Subject'), 'Undelivered Mail Returned to Sender');
    const body = text!.body.toString().replace(/\r\n\s*/g, ' ');
    assert.match(body, /<bob@example\.net>: delivery failed/);
    assert.match(body, /<dave@example\.org>: delivery delayed/);
    const [, bob, dave] = statusBlocks(status!.body);
    assert.equal(bob!.get('Will-Retry-Until'), undefined);
    assert.equal(dave!.get('Will-Retry-Until'), 'Tue, 06 Jan 2026 09:30:00 +0000');
    assert.equal(dave!.get('Status'), '4.4.2');
  });
});

describe('a notification about an internationalized (SMTPUTF8) address', () => {
  test('uses the global delivery-status types and the utf-8 address type', async () => {
    const dsn = input({
      returnTo: 'jörg@bücher.example',
      recipients: [
        { address: 'δοκιμή+tag@παράδειγμα.example', action: 'failed', reply: '550 5.1.1 unknown' },
        { address: 'bob@example.net', action: 'failed', reply: '550 5.1.1 unknown' },
      ],
    });
    const parts = await parse(buildDsn(dsn));
    assert.deepEqual(
      parts.map((p) => p.node.contentType),
      ['multipart/report', 'text/plain', 'message/global-delivery-status', 'message/global-headers'],
    );
    const [root, text, status] = parts;
    assert.equal(root!.node.libmime.parseHeaderValue(root!.node.headers.getFirst('Content-Type')).params['report-type'], 'global-delivery-status');
    assert.equal(text!.node.libmime.parseHeaderValue(text!.node.headers.getFirst('Content-Type')).params.charset, 'utf-8');
    const [, intl, ascii] = statusBlocks(status!.body);
    assert.equal(intl!.get('Final-Recipient'), 'utf-8; δοκιμή\\x{2B}tag@παράδειγμα.example');
    assert.equal(ascii!.get('Final-Recipient'), 'rfc822; bob@example.net');
    assert.match(text!.body.toString(), /<δοκιμή\+tag@παράδειγμα\.example>: delivery failed/);
    assert.deepEqual(dsnTransport(dsn), { eightBitMime: true, smtpUtf8: true });
  });
});

describe('dsnStatus', () => {
  test('takes the enhanced status code from a reply', () => {
    assert.equal(dsnStatus('550 5.1.1 <bob@example.com>: no such user', 'failed'), '5.1.1');
    assert.equal(dsnStatus('552-5.2.2 mailbox full', 'failed'), '5.2.2');
    assert.equal(dsnStatus('451 4.7.1 greylisted', 'delayed'), '4.7.1');
    assert.equal(dsnStatus('5.4.4 no route to host', 'failed'), '5.4.4');
  });

  test('falls back to the generic code of the class when the reply has none', () => {
    assert.equal(dsnStatus('550 no such user', 'failed'), '5.0.0');
    assert.equal(dsnStatus('example.invalid: domain does not exist (NXDOMAIN)', 'failed'), '5.0.0');
    assert.equal(dsnStatus('connection timed out', 'delayed'), '4.0.0');
    assert.equal(dsnStatus('550 5.1.1x garbage', 'failed'), '5.0.0');
  });

  test('ignores a code whose class does not fit the action', () => {
    assert.equal(dsnStatus('451 4.4.1 no answer from host', 'failed'), '5.0.0');
    assert.equal(dsnStatus('550 5.1.1 no such user', 'delayed'), '4.0.0');
    assert.equal(dsnStatus('250 2.0.0 ok', 'failed'), '5.0.0');
  });
});

describe('readHeaderBlock', () => {
  async function withFile(content: Buffer | string, run: (path: string) => Promise<void>): Promise<void> {
    const dir = await mkdtemp(join(tmpdir(), 'postern-dsn-'));
    try {
      const path = join(dir, 'message');
      await writeFile(path, content);
      await run(path);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }

  test('reads a CRLF message file up to and including the empty line, and closes the file', async () => {
    await withFile('Subject: a\r\nFrom: x@example.com\r\n\r\nbody line\r\n\r\nmore\r\n', async (path) => {
      const stream = createReadStream(path);
      const closed = new Promise<void>((resolve) => stream.once('close', () => resolve()));
      assert.equal((await readHeaderBlock(stream)).toString(), 'Subject: a\r\nFrom: x@example.com\r\n\r\n');
      assert.equal(stream.destroyed, true);
      await closed;
    });
  });

  test('reads an LF message up to and including the empty line', async () => {
    await withFile('Subject: a\nFrom: x@example.com\n\nbody\n', async (path) => {
      assert.equal((await readHeaderBlock(createReadStream(path))).toString(), 'Subject: a\nFrom: x@example.com\n\n');
    });
  });

  test('finds the empty line when it is split across chunks', async () => {
    const bytes = [...Buffer.from('Subject: a\r\nTo: b@example.com\r\n\r\nbody\r\n')].map((b) => Buffer.from([b]));
    assert.equal((await readHeaderBlock(Readable.from(bytes))).toString(), 'Subject: a\r\nTo: b@example.com\r\n\r\n');
  });

  test('reads a message with no body', async () => {
    await withFile('Subject: a\r\nFrom: x@example.com\r\n\r\n', async (path) => {
      assert.equal((await readHeaderBlock(createReadStream(path))).toString(), 'Subject: a\r\nFrom: x@example.com\r\n\r\n');
    });
  });

  test('returns a stream that ends without an empty line whole', async () => {
    await withFile('Subject: a\r\nFrom: x@example.com\r\n', async (path) => {
      assert.equal((await readHeaderBlock(createReadStream(path))).toString(), 'Subject: a\r\nFrom: x@example.com\r\n');
    });
    assert.equal((await readHeaderBlock(Readable.from([Buffer.from('Subject: a\nX: unterminated')]))).toString(), 'Subject: a\nX: unterminated');
  });

  test('cuts a header block larger than the limit at the last complete line, and closes the file', async () => {
    const header = Array.from({ length: 2000 }, (_, i) => `X-Filler-${i}: ${'z'.repeat(40)}\r\n`).join('');
    await withFile(`${header}\r\nbody\r\n`, async (path) => {
      const stream = createReadStream(path, { highWaterMark: 1024 });
      const closed = new Promise<void>((resolve) => stream.once('close', () => resolve()));
      const block = await readHeaderBlock(stream, 10_000);
      assert.ok(block.length <= 10_000);
      assert.ok(block.length > 9_900);
      assert.equal(block.subarray(-2).toString(), '\r\n');
      assert.equal(block.toString(), header.slice(0, block.length));
      await closed;
    });
  });

  test('gives nothing when the first line alone is larger than the limit', async () => {
    assert.equal((await readHeaderBlock(Readable.from([Buffer.from(`X-Huge: ${'a'.repeat(100)}\r\n\r\n`)]), 50)).length, 0);
  });
});
