import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { EightBitCheck, eightBitPlacement, eightBitPlacementOf } from '../../../src/spool/eightBitContent.js';
import { transferNeeds } from '../../../src/delivery/smtpExtensions.js';

describe('eight-bit content', () => {
  test('a message of ASCII alone has no placement; UTF-8 in a header field is "headers", only in the body "body"', () => {
    assert.equal(eightBitPlacementOf(Buffer.from('Subject: hi\r\n\r\nbody\r\n')), undefined);
    assert.equal(eightBitPlacementOf(Buffer.from('Subject: Grüße\r\n\r\nbody\r\n')), 'headers');
    assert.equal(eightBitPlacementOf(Buffer.from('Subject: hi\r\n\r\ncafé\r\n')), 'body');
    // No empty line: everything is header.
    assert.equal(eightBitPlacementOf(Buffer.from('Subject: hi\r\nX: é')), 'headers');
    // A byte of 0x80 or more that is not even UTF-8 counts the same.
    assert.equal(eightBitPlacementOf(Buffer.from([0x41, 0x0d, 0x0a, 0x0d, 0x0a, 0xff])), 'body');
  });

  test('the streaming check sees an 8-bit byte in any chunk, and only then', () => {
    const check = new EightBitCheck();
    for (const chunk of ['Subject: a\r\n', '\r\n', 'plain\r\n']) check.update(Buffer.from(chunk));
    assert.equal(check.foundEightBit, false);
    check.update(Buffer.from([0x41, 0xc3]));
    check.update(Buffer.from([0xa9, 0x41]));
    assert.equal(check.foundEightBit, true);
    assert.equal(eightBitPlacement(false, check.foundEightBit), 'body');
    assert.equal(eightBitPlacement(true, true), 'headers');
    assert.equal(eightBitPlacement(false, false), undefined);
  });

  test('what the next hop must offer: 8BITMIME for any 8-bit byte, SMTPUTF8 for UTF-8 headers the client declared', () => {
    assert.deepEqual(transferNeeds({}), { eightBitMime: false, utf8Headers: false });
    assert.deepEqual(transferNeeds({ eightBit: 'body', smtpUtf8: true }), { eightBitMime: true, utf8Headers: false });
    assert.deepEqual(transferNeeds({ eightBit: 'headers', smtpUtf8: true }), { eightBitMime: true, utf8Headers: true });
    // Without SMTPUTF8 from the client the headers are relayed as 8-bit data, as Postfix does.
    assert.deepEqual(transferNeeds({ eightBit: 'headers' }), { eightBitMime: true, utf8Headers: false });
  });
});
