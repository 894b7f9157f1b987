import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Readable } from 'node:stream';
import headers from '../../../src/rules/headers.js';
import { createRule, dataContext, MessageSpool, parseParams, verdictOf } from './context.js';

const spool = new MessageSpool();
after(() => spool.remove());

const TOP = 'From: alice@example.com\nTo: bob@example.org\nDate: Thu, 1 Jan 2026 00:00:00 +0000\nMessage-ID: <1@example.com>\nSubject: report';
const BASELINE = { blockedExtensions: ['exe', '.JS', 'vbs', 'scr', 'tar.gz'] };

const check = async (params: unknown, raw: string) => verdictOf(createRule(headers, params), dataContext(spool.add(raw)));
const blocked = (ext: string) => ({ action: 'reject', code: 550, enhanced: '5.7.1', text: `attachments of type .${ext} are not accepted` });

/** A multipart/mixed message: a text part, then one attachment part with the given header lines. */
function withAttachment(partHeaders: string): string {
  return `${TOP}
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="outer"

--outer
Content-Type: text/plain; charset=utf-8

Please find the file attached.
--outer
${partHeaders}
Content-Transfer-Encoding: base64

AAAA
--outer--
`;
}

describe('headers: required, forbidden and patterned fields', () => {
  test('a message without a required field is refused naming it, with 5.6.0', async () => {
    const raw = 'From: alice@example.com\nDate: Thu, 1 Jan 2026 00:00:00 +0000\n\nhi\n';
    assert.deepEqual(await check({ require: ['Date', 'Message-ID', 'From'] }, raw), {
      action: 'reject',
      code: 550,
      enhanced: '5.6.0',
      text: 'the message has no Message-ID header',
    });
  });

  test('field names match in any case', async () => {
    const raw = 'FROM: alice@example.com\ndate: Thu, 1 Jan 2026 00:00:00 +0000\nMESSAGE-id: <1@example.com>\n\nhi\n';
    assert.equal((await check({ require: ['Date', 'Message-ID', 'From'] }, raw)).action, 'continue');
  });

  test('a forbidden field is refused', async () => {
    assert.deepEqual(await check({ forbid: ['X-Originating-IP'] }, `${TOP}\nx-originating-ip: [10.0.0.5]\n\nhi\n`), {
      action: 'reject',
      code: 550,
      enhanced: '5.7.1',
      text: 'the message may not carry a X-Originating-IP header',
    });
    assert.equal((await check({ forbid: ['X-Originating-IP'] }, `${TOP}\n\nhi\n`)).action, 'continue');
  });

  test('a reject pattern refuses a matching value, with the operator\'s text when given', async () => {
    const params = { patterns: [{ header: 'Subject', match: '^\\[bulk\\]', ignoreCase: true, action: 'reject', text: 'bulk mail must go through the newsletter system' }] };
    assert.deepEqual(await check(params, 'From: alice@example.com\nSubject: [BULK] offers\n\nhi\n'), {
      action: 'reject',
      code: 550,
      enhanced: '5.7.1',
      text: 'bulk mail must go through the newsletter system',
    });
    assert.equal((await check(params, 'From: alice@example.com\nSubject: re: [bulk] offers\n\nhi\n')).action, 'continue');
  });

  test('a pattern is case-sensitive unless ignoreCase is set', async () => {
    const params = { patterns: [{ header: 'Subject', match: 'bulk', action: 'reject' }] };
    assert.equal((await check(params, 'From: a@example.com\nSubject: BULK\n\nhi\n')).action, 'continue');
    assert.deepEqual(await check(params, 'From: a@example.com\nSubject: bulk\n\nhi\n'), {
      action: 'reject',
      code: 550,
      enhanced: '5.7.1',
      text: 'the Subject header is not accepted',
    });
  });

  test('a require pattern needs the field present and every occurrence matching', async () => {
    const params = { patterns: [{ header: 'X-Department', match: '^(sales|support)$', action: 'require' }] };
    assert.equal((await check(params, 'From: a@example.com\nX-Department: sales\n\nhi\n')).action, 'continue');
    assert.deepEqual(await check(params, 'From: a@example.com\n\nhi\n'), {
      action: 'reject',
      code: 550,
      enhanced: '5.6.0',
      text: 'the message has no X-Department header',
    });
    assert.deepEqual(await check(params, 'From: a@example.com\nX-Department: sales\nX-Department: legal\n\nhi\n'), {
      action: 'reject',
      code: 550,
      enhanced: '5.7.1',
      text: 'the X-Department header does not have an accepted value',
    });
  });

  test('bad params are refused when the policy loads', () => {
    assert.throws(() => parseParams(headers, {}), /at least one of/);
    assert.throws(() => parseParams(headers, { require: ['Message ID'] }), /header field name/);
    assert.throws(() => parseParams(headers, { patterns: [{ header: 'Subject', match: '([a-z', action: 'reject' }] }), /not a regular expression/);
    assert.throws(() => parseParams(headers, { patterns: [{ header: 'Subject', match: 'x', action: 'reject', text: 'two\r\nlines' }] }), /one line/);
    assert.throws(() => parseParams(headers, { blockedExtensions: ['e x e'] }), /extension/);
  });

  test('a pattern that backtracks exponentially still answers at once on a crafted value', async () => {
    // (a+)+$ against 5,000 a's and a '!' would backtrack for longer than the universe has been
    // around; V8's linear-time fallback (util/regexpBacktrackLimit) answers in milliseconds.
    const params = { patterns: [{ header: 'Subject', match: '^(a+)+$', action: 'reject' }] };
    assert.equal((await check(params, `From: a@example.com\nSubject: ${'a'.repeat(5000)}!\n\nhi\n`)).action, 'continue');
    assert.equal((await check(params, `From: a@example.com\nSubject: ${'a'.repeat(5000)}\n\nhi\n`)).action, 'reject');
  });

  test('a pattern the fallback cannot run (backreference or lookaround) is refused when it nests quantifiers', () => {
    for (const match of ['(a+)+(?=x)', '^(x+)*\\1$', '(?<!y)(b*)*c']) {
      assert.throws(() => parseParams(headers, { patterns: [{ header: 'Subject', match, action: 'reject' }] }), /exponential time/, match);
    }
    for (const match of ['^(?:[a-z0-9-]+\\.)+example\\.com$', '(\\w+) \\1', '^(?!re:)', '^(a+)+$']) {
      assert.doesNotThrow(() => parseParams(headers, { patterns: [{ header: 'Subject', match, action: 'reject' }] }), match);
    }
  });

  test('extensions in params are kept lower-case and without the dot', () => {
    assert.deepEqual(parseParams(headers, BASELINE).blockedExtensions, ['exe', 'js', 'vbs', 'scr', 'tar.gz']);
  });
});

describe('headers: blocked attachment types', () => {
  test('an attachment with a blocked extension is refused naming the type, in any case', async () => {
    const verdict = await check(BASELINE, withAttachment('Content-Type: application/octet-stream\nContent-Disposition: attachment; filename="setup.EXE"'));
    assert.deepEqual(verdict, blocked('exe'));
  });

  test('the last extension counts: invoice.pdf.exe is an .exe, invoice.exe.pdf is not', async () => {
    assert.deepEqual(await check(BASELINE, withAttachment('Content-Type: application/pdf\nContent-Disposition: attachment; filename="invoice.pdf.exe"')), blocked('exe'));
    assert.equal((await check(BASELINE, withAttachment('Content-Type: application/pdf\nContent-Disposition: attachment; filename="invoice.exe.pdf"'))).action, 'continue');
  });

  test('trailing dots and spaces, which Windows drops, do not hide an extension', async () => {
    assert.deepEqual(await check(BASELINE, withAttachment('Content-Type: application/octet-stream\nContent-Disposition: attachment; filename="setup.exe. ."')), blocked('exe'));
  });

  test('an extension of several parts matches as a whole', async () => {
    assert.deepEqual(await check(BASELINE, withAttachment('Content-Type: application/gzip\nContent-Disposition: attachment; filename="backup.TAR.gz"')), blocked('tar.gz'));
    assert.equal((await check(BASELINE, withAttachment('Content-Type: application/gzip\nContent-Disposition: attachment; filename="backup.gz"'))).action, 'continue');
  });

  test('the Content-Type name counts even when Content-Disposition names another file', async () => {
    const part = 'Content-Type: application/octet-stream; name="report.scr"\nContent-Disposition: attachment; filename="report.pdf"';
    assert.deepEqual(await check(BASELINE, withAttachment(part)), blocked('scr'));
  });

  test('an attachment in multipart/mixed inside multipart/alternative is found', async () => {
    const raw = `${TOP}
MIME-Version: 1.0
Content-Type: multipart/alternative; boundary="alt"

--alt
Content-Type: text/plain

plain version
--alt
Content-Type: multipart/mixed; boundary="mixed"

--mixed
Content-Type: text/html

<p>html version</p>
--mixed
Content-Type: application/octet-stream
Content-Disposition: attachment; filename="tool.vbs"
Content-Transfer-Encoding: base64

AAAA
--mixed--
--alt--
`;
    assert.deepEqual(await check(BASELINE, raw), blocked('vbs'));
  });

  test('an RFC 2231 encoded filename is decoded before its extension is read', async () => {
    const part = "Content-Type: application/octet-stream\nContent-Disposition: attachment;\n filename*=UTF-8''Rechnung%20f%C3%BCr%20M%C3%A4rz.pdf.VB%53";
    assert.deepEqual(await check(BASELINE, withAttachment(part)), blocked('vbs'));
  });

  test('an RFC 2231 filename split into continuations is joined before its extension is read', async () => {
    const part = "Content-Type: application/octet-stream\nContent-Disposition: attachment;\n filename*0*=UTF-8''in%C3%A4;\n filename*1=voice.pdf.e;\n filename*2=xe";
    assert.deepEqual(await check(BASELINE, withAttachment(part)), blocked('exe'));
  });

  test('an encoded-word filename (=?UTF-8?B?...?=) is decoded before its extension is read', async () => {
    // "Überweisung.pdf.js" in base64 encoded-word form, as many mail clients write it.
    const part = 'Content-Type: application/octet-stream; name="=?UTF-8?B?w5xiZXJ3ZWlzdW5nLnBkZi5qcw==?="';
    assert.deepEqual(await check(BASELINE, withAttachment(part)), blocked('js'));
  });

  test('allowed attachments pass, and a blocked name in the body text is not an attachment', async () => {
    const raw = withAttachment('Content-Type: application/pdf\nContent-Disposition: attachment; filename="report.pdf"').replace(
      'Please find the file attached.',
      'Do not open setup.exe; filename="setup.exe"',
    );
    assert.equal((await check(BASELINE, raw)).action, 'continue');
  });

  test('a message without MIME structure passes', async () => {
    assert.equal((await check(BASELINE, `${TOP}\n\nJust text mentioning virus.exe.\n`)).action, 'continue');
  });

  test('the message is read to its end even when a blocked attachment comes first', async () => {
    const message = spool.add(
      withAttachment('Content-Type: application/octet-stream\nContent-Disposition: attachment; filename="a.exe"').replace(
        '--outer--',
        `--outer\nContent-Type: text/plain\n\n${'filler line\n'.repeat(20_000)}--outer--`,
      ),
    );
    let opened: Readable | undefined;
    const ctx = dataContext({ ...message, open: () => (opened = message.open()) });
    assert.deepEqual(await verdictOf(createRule(headers, BASELINE), ctx), blocked('exe'));
    assert.ok(opened?.readableEnded, 'the stream was read to its end');
  });

  test('a message with more parts than can be checked is refused, not failed', async () => {
    const parts = Array.from({ length: 1100 }, (_, i) => `--b\nContent-Type: text/plain\n\npart ${i}\n`).join('');
    const raw = `${TOP}\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary="b"\n\n${parts}--b--\n`;
    assert.deepEqual(await check(BASELINE, raw), {
      action: 'reject',
      code: 550,
      enhanced: '5.6.0',
      text: 'the message has too many parts, or too large a part header, to be checked',
    });
  });

  test('header checks come before the attachment walk', async () => {
    const raw = withAttachment('Content-Type: application/octet-stream\nContent-Disposition: attachment; filename="a.exe"').replace(/^Message-ID: .*\n/m, '');
    const verdict = await check({ ...BASELINE, require: ['Message-ID'] }, raw);
    assert.equal(verdict.action === 'reject' && verdict.text, 'the message has no Message-ID header');
  });
});

describe('headers rule, once the engine has given up on it', () => {
  test('stops walking the message when ctx.signal is aborted', async () => {
    const message = spool.add('From: a@example.com\nContent-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: text/plain\n\nhi\n--b--\n');
    const signal = AbortSignal.abort(new Error('rule timed out'));
    await assert.rejects(
      Promise.resolve(createRule(headers, BASELINE).evaluate(dataContext(message, { signal }))),
      /abort|timed out/i,
    );
  });
});
