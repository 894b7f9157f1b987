import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { MAX_REPLY_TEXT, limitReply, listed } from '../../../src/rules/shared/replyLimit.js';

describe('reply texts built from parts', () => {
  test('items are listed as "a", "a and b", "a, b and c"', () => {
    assert.equal(listed([]), '');
    assert.equal(listed(['a']), 'a');
    assert.equal(listed(['a', 'b']), 'a and b');
    assert.equal(listed(['a', 'b', 'c']), 'a, b and c');
  });

  test('a short text is left as it is', () => {
    assert.equal(limitReply('example.com publishes no DMARC record'), 'example.com publishes no DMARC record');
  });

  test('a long text is cut to the limit in UTF-8 octets and ends in "..."', () => {
    const cut = limitReply('ü'.repeat(400));
    assert.ok(Buffer.byteLength(cut) <= MAX_REPLY_TEXT, `${Buffer.byteLength(cut)} octets`);
    assert.ok(cut.endsWith('...'));
    assert.equal(limitReply('x'.repeat(20), { max: 10 }), 'xxxxxxx...');
  });

  test('with ascii every character outside printable ASCII becomes "?"', () => {
    assert.equal(limitReply('bücher\tshop', { ascii: true }), 'b?cher?shop');
  });
});
