import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { isSenderAllowed, senderPatternProblem } from '../../../src/auth/senderPattern.js';

describe('sender patterns', () => {
  test('addresses, *@domain and *@*.domain are valid patterns', () => {
    for (const pattern of ['alice@example.com', 'first.last+tag@mail.example.co.uk', '*@example.com', '*@*.example.com', 'jörg@example.de', 'ops@localhost']) {
      assert.equal(senderPatternProblem(pattern), undefined, pattern);
    }
  });

  test('anything else is rejected with a reason', () => {
    for (const pattern of ['', 'alice', '@example.com', 'alice@', 'al*@example.com', 'alice@*.example.com', '*@ex*.com', '*@example..com', 'a b@example.com', '"quoted"@example.com', '*@bücher.de', 'alice@-bad.example']) {
      assert.equal(typeof senderPatternProblem(pattern), 'string', pattern);
    }
  });

  test('an exact address matches itself, ignoring case', () => {
    assert.equal(isSenderAllowed(['alice@example.com'], 'Alice@Example.COM'), true);
    assert.equal(isSenderAllowed(['alice@example.com'], 'bob@example.com'), false);
    assert.equal(isSenderAllowed(['alice@example.com'], 'alice@example.com.evil.test'), false);
  });

  test('*@domain matches any address at that domain but not its subdomains', () => {
    assert.equal(isSenderAllowed(['*@alerts.example.com'], 'cron@alerts.example.com'), true);
    assert.equal(isSenderAllowed(['*@alerts.example.com'], 'cron@eu.alerts.example.com'), false);
    assert.equal(isSenderAllowed(['*@alerts.example.com'], 'cron@evilalerts.example.com'), false);
  });

  test('*@*.domain matches subdomains only, not the domain itself or look-alikes', () => {
    assert.equal(isSenderAllowed(['*@*.example.com'], 'app@eu.example.com'), true);
    assert.equal(isSenderAllowed(['*@*.example.com'], 'app@a.b.example.com'), true);
    assert.equal(isSenderAllowed(['*@*.example.com'], 'app@example.com'), false);
    assert.equal(isSenderAllowed(['*@*.example.com'], 'app@badexample.com'), false);
  });

  test('no patterns, the null sender and malformed addresses match nothing', () => {
    assert.equal(isSenderAllowed([], 'alice@example.com'), false);
    assert.equal(isSenderAllowed(['*@example.com'], ''), false);
    assert.equal(isSenderAllowed(['*@example.com'], 'example.com'), false);
  });
});
