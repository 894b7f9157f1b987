import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { HeaderBlockCollector, parseHeaderFields } from '../../../src/smtp/headerBlock.js';

describe('header block', () => {
  test('fields are split and unfolded, in order, with lower-case keys', () => {
    assert.deepEqual(parseHeaderFields('From: Alice <a@example.com>\r\nSubject: a long\r\n  folded subject\r\nX-Empty:\r\n\r\nbody').fields, [
      { name: 'From', key: 'from', value: 'Alice <a@example.com>' },
      { name: 'Subject', key: 'subject', value: 'a long  folded subject' },
      { name: 'X-Empty', key: 'x-empty', value: '' },
    ]);
  });

  test('the collector keeps only the header block, even when the blank line straddles chunks', () => {
    const collector = new HeaderBlockCollector(1024);
    for (const chunk of ['Subject: hi\r', '\n', 'From: a@example.com\r\n\r', '\nbody line one\r\nFrom: not a header\r\n']) {
      collector.update(Buffer.from(chunk));
    }
    assert.deepEqual(
      collector.fields().map((f) => [f.key, f.value]),
      [
        ['subject', 'hi'],
        ['from', 'a@example.com'],
      ],
    );
    assert.equal(collector.truncated, false);
  });

  test('a header block longer than the limit is cut and flagged', () => {
    const collector = new HeaderBlockCollector(20);
    collector.update(Buffer.from('Subject: hello there\r\nX-Long: yes\r\n\r\nbody'));
    assert.equal(collector.truncated, true);
    assert.deepEqual(collector.fields().map((f) => f.key), ['subject']);
  });

  test('a line that is neither a field nor a continuation makes the block malformed', () => {
    const parsed = parseHeaderFields('Subject: ok\r\nnot a field line\r\nTo: b@example.com');
    assert.equal(parsed.malformed, true);
    assert.equal(parseHeaderFields(' leading continuation\r\nSubject: ok').malformed, true);
    assert.equal(parseHeaderFields('Subject: ok\r\nTo: b@example.com').malformed, false);
  });

  test('white space before the colon still names the field, as mail readers read it', () => {
    assert.deepEqual(parseHeaderFields('From : ceo@example.org\r\nFrom: alice@example.com').fields.map((f) => [f.key, f.value]), [
      ['from', 'ceo@example.org'],
      ['from', 'alice@example.com'],
    ]);
  });

  test('a header trickled one byte at a time is collected the same, at a cost proportional to its size', () => {
    const collector = new HeaderBlockCollector(256 * 1024);
    const text = `Subject: drip\r\n${'X-Pad: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n'.repeat(3000)}\r\nbody`;
    for (const byte of Buffer.from(text)) collector.update(Buffer.from([byte]));
    assert.equal(collector.fields().length, 3001);
    assert.equal(collector.truncated, false);
  });
});
