import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { receivedHeader, rfc5322Date } from '../../../src/smtp/receivedHeader.js';

const base = {
  helo: 'laptop.example.com',
  clientAddress: '192.0.2.7',
  hostname: 'relay.example.com',
  queueId: '01JABCDEFGHJKMNP',
  tlsProtocol: 'TLSv1.3',
  tlsCipher: 'TLS_AES_256_GCM_SHA384',
  date: new Date(Date.UTC(2026, 10, 30, 9, 5, 7)),
};

describe('receivedHeader', () => {
  test('records the client, the TLS parameters, the protocol and the queue id, folded with CRLF TAB', () => {
    assert.equal(
      receivedHeader(base),
      'Received: from laptop.example.com ([192.0.2.7])\r\n' +
        '\t(using TLSv1.3 with cipher TLS_AES_256_GCM_SHA384)\r\n' +
        '\tby relay.example.com (Postern) with ESMTPSA id 01JABCDEFGHJKMNP;\r\n' +
        '\tMon, 30 Nov 2026 09:05:07 +0000\r\n',
    );
  });
  test('names the authenticated user only when asked to', () => {
    assert.doesNotMatch(receivedHeader(base), /alice/);
    assert.match(receivedHeader({ ...base, authenticatedUser: 'alice' }), /\r\n\t\(Authenticated sender: alice\)\r\n/);
  });
  test('writes an IPv6 client as an IPv6 address literal', () => {
    assert.match(receivedHeader({ ...base, clientAddress: '2001:db8::1' }), /\(\[IPv6:2001:db8::1\]\)/);
  });
  test('writes dates in RFC 5322 form with a numeric zone', () => {
    assert.equal(rfc5322Date(new Date(Date.UTC(2027, 0, 3, 23, 0, 9))), 'Sun, 3 Jan 2027 23:00:09 +0000');
  });
  test('an EHLO name that is not a domain cannot open a comment, end the field or add 8-bit bytes', () => {
    const header = receivedHeader({ ...base, helo: 'a(b;c)\u00e9)))' });
    assert.match(header, /^Received: from a\?b\?c\?\?\?\?\? \(\[192\.0\.2\.7\]\)\r\n/);
    assert.equal(/[^\x00-\x7f]/.test(header), false);
  });
});
