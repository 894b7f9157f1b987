import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { NulByteCheck } from '../../../src/smtp/nulByteCheck.js';

function check(...chunks: string[]): boolean {
  const nul = new NulByteCheck();
  for (const chunk of chunks) nul.update(Buffer.from(chunk, 'latin1'));
  return nul.foundNul;
}

describe('NulByteCheck', () => {
  test('a message without NUL passes, 8-bit bytes included', () => {
    assert.equal(check('Subject: x\r\n\r\nhall\xf6\r\n', '.. not an end\r\n'), false);
  });

  test('a NUL hidden before a dot line is found, in whichever chunk it comes', () => {
    assert.equal(check('body\r\n\x00.\r\nMAIL FROM:<x@example.com>\r\n'), true);
    assert.equal(check('body\r\n', '\x00', '.\r\n'), true);
  });

  test('once found it stays found, whatever comes after', () => {
    const nul = new NulByteCheck();
    nul.update(Buffer.from([0x61, 0x00]));
    nul.update(Buffer.from('clean\r\n'));
    assert.equal(nul.foundNul, true);
  });
});
