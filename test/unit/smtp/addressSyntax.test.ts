import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { isAcceptableHeloName, mailboxProblem } from '../../../src/smtp/addressSyntax.js';

const ascii = { smtpUtf8: false };
const utf8 = { smtpUtf8: true };

describe('mailbox syntax', () => {
  test('accepts ordinary addresses, subaddresses and address literals', () => {
    for (const address of ['alice@example.com', 'first.last+tag@mail.example.co.uk', "o'hara@example.com", 'x@[192.0.2.1]', 'x@[IPv6:2001:db8::1]']) {
      assert.equal(mailboxProblem(address, ascii), undefined, address);
    }
  });
  test('refuses forms a later parser could read as several addresses or as a route', () => {
    for (const address of ['x,bob@example.net', 'bob@example.net,eve@example.org', 'a b@example.com', 'a@b@example.com', '@relay.example:bob@example.net', 'bob@example.net.', 'bob@-example.net', '.bob@example.net', 'bob.@example.net', 'bob@', '@example.net', 'bob']) {
      assert.equal(mailboxProblem(address, ascii), 'syntax', address);
    }
  });
  test('refuses quoted local parts with their own reason', () => {
    assert.equal(mailboxProblem('"bob@evil"@example.net', ascii), 'quoted-local-part');
    assert.equal(mailboxProblem('"a,b"@example.net', ascii), 'quoted-local-part');
  });
  test('refuses local parts over 64 octets and addresses over 254', () => {
    assert.equal(mailboxProblem(`${'a'.repeat(65)}@example.com`, ascii), 'too-long');
    assert.equal(mailboxProblem(`a@${'b'.repeat(60)}.${'c'.repeat(60)}.${'d'.repeat(60)}.${'e'.repeat(60)}.${'f'.repeat(10)}.com`, ascii), 'too-long');
  });
  test('accepts UTF-8 only when the transaction declared SMTPUTF8, and says so otherwise', () => {
    for (const address of ['jörg@bücher.example', 'jorg@bücher.example', 'jörg@example.com', '用户@例子.广告', 'δοκιμή@[192.0.2.1]']) {
      assert.equal(mailboxProblem(address, ascii), 'needs-smtputf8', address);
      assert.equal(mailboxProblem(address, utf8), undefined, address);
    }
    // Malformed stays malformed, SMTPUTF8 or not.
    for (const address of ['jö rg@example.com', 'jörg@bü cher.example', 'jörg..x@example.com']) {
      assert.equal(mailboxProblem(address, ascii), 'syntax', address);
      assert.equal(mailboxProblem(address, utf8), 'syntax', address);
    }
  });
  test('refuses malformed address literals', () => {
    assert.equal(mailboxProblem('x@[999.0.0.1]', ascii), 'syntax');
    assert.equal(mailboxProblem('x@[IPv6:zz::1]', ascii), 'syntax');
    assert.equal(mailboxProblem('x@[192.0.2.1', ascii), 'syntax');
  });
});

describe('EHLO names', () => {
  test('a domain or an address literal is acceptable as it is', () => {
    assert.equal(isAcceptableHeloName('laptop.example.com'), true);
    assert.equal(isAcceptableHeloName('[192.0.2.7]'), true);
    assert.equal(isAcceptableHeloName('[IPv6:2001:db8::7]'), true);
  });
  test('anything else is not', () => {
    for (const name of ['a(b;c)', 'exämple.com', 'host name', 'x)(y']) assert.equal(isAcceptableHeloName(name), false, name);
  });
});
