import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { HeaderBlockCollector, parseHeaderFields } from '../../../src/smtp/headerBlock.js';

describe('header block', () => {
  test('fields are split and unfolded, in order, with lower-case keys', () => {
    assert.deepEqual(parseHeaderFields('From: Alice <a@example.com>\r\nSubject: a long\r\n  folded subject\r\nX-Empty:\r\n\r\nbody'), [
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

  test('lines that are not fields are skipped', () => {
    assert.deepEqual(parseHeaderFields('Subject: ok\r\nnot a field line\r\nTo: b@example.com').map((f) => f.key), ['subject', 'to']);
  });
});
