import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { LineEndingCheck } from '../../../src/smtp/lineEndingCheck.js';

function check(...chunks: string[]): boolean {
  const c = new LineEndingCheck();
  for (const chunk of chunks) c.update(Buffer.from(chunk, 'latin1'));
  return c.foundBareLineEnding;
}

describe('LineEndingCheck', () => {
  test('accepts a message whose lines all end in CRLF', () => {
    assert.equal(check('Subject: a\r\n\r\nbody\r\n'), false);
  });
  test('finds a bare LF', () => {
    assert.equal(check('Subject: a\r\n\r\nbo\ndy\r\n'), true);
  });
  test('finds a bare CR', () => {
    assert.equal(check('Subject: a\r\n\r\nbo\rdy\r\n'), true);
  });
  test('finds a bare LF at the very start', () => {
    assert.equal(check('\nSubject: a\r\n'), true);
  });
  test('accepts a CRLF split across two chunks', () => {
    assert.equal(check('Subject: a\r', '\nbody\r\n'), false);
  });
  test('finds a CR at the end of one chunk followed by something other than LF', () => {
    assert.equal(check('Subject: a\r', 'body\r\n'), true);
  });
  test('finds an LF at the start of a chunk that did not follow a CR', () => {
    assert.equal(check('Subject: a', '\nbody\r\n'), true);
  });
  test('finds a message that ends on a lone CR', () => {
    assert.equal(check('Subject: a\r\n\r\nbody\r'), true);
  });
  test('finds the smuggling sequence LF . LF and CR LF . LF', () => {
    assert.equal(check('a\r\n\n.\nMAIL FROM:<x@y>\r\n'), true);
    assert.equal(check('a\r\n.\nb\r\n'), true);
  });
  test('accepts an empty message', () => {
    assert.equal(check(), false);
  });
});
