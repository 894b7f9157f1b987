import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { parseHeaderFields } from '../../../src/smtp/headerBlock.js';
import { ownHeaderClaim } from '../../../src/smtp/ownHeaderClaim.js';

const claim = (block: string) => ownHeaderClaim(parseHeaderFields(`${block}\r\n\r\n`).fields, 'relay.example.com');

describe('ownHeaderClaim', () => {
  test('a Received field is never a claim, even by Postern\'s host: forwarded mail carries one', () => {
    assert.equal(claim('Received: from a.example ([192.0.2.1])\r\n\tby relay.example.com (Postern) with ESMTPSA id X; Mon, 30 Nov 2026 09:00:00 +0000'), undefined);
    assert.equal(claim('Received: from relay.example.com by mx.example.net with ESMTP; Mon, 30 Nov 2026 09:00:00 +0000'), undefined);
  });

  test('Authentication-Results with Postern\'s host as authserv-id is a claim; another authserv-id is not', () => {
    assert.equal(claim('Authentication-Results: relay.example.com; auth=pass smtp.auth=ceo'), 'Authentication-Results');
    assert.equal(claim('Authentication-Results: (comment) relay.example.com; dkim=pass'), 'Authentication-Results');
    assert.equal(claim('Authentication-Results: mx.example.net; dkim=pass header.d=relay.example.com'), undefined);
  });

  test('any field in the X-Postern- name space is a claim', () => {
    assert.equal(claim('Subject: hi\r\nx-postern-queue-id: 01X'), 'x-postern-queue-id');
    assert.equal(claim('Subject: X-Postern-Queue-ID: 01X\r\nX-Posterns: no'), undefined);
  });
});
