import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { mxMatchesPolicy } from '../../../src/delivery/mtaSts.js';

describe('matching an MX host against policy patterns', () => {
  test('matches a host named exactly', () => {
    assert.equal(mxMatchesPolicy('mail.example.com', ['mail.example.com']), true);
    assert.equal(mxMatchesPolicy('mail2.example.com', ['mail.example.com']), false);
  });

  test('lets a wildcard stand for exactly one leftmost label', () => {
    assert.equal(mxMatchesPolicy('mx1.example.net', ['*.example.net']), true);
    assert.equal(mxMatchesPolicy('example.net', ['*.example.net']), false);
    assert.equal(mxMatchesPolicy('a.mx1.example.net', ['*.example.net']), false);
    assert.equal(mxMatchesPolicy('mx1.badexample.net', ['*.example.net']), false);
  });

  test('compares case-insensitively and ignores trailing dots on either side', () => {
    assert.equal(mxMatchesPolicy('MAIL.Example.COM.', ['mail.example.com']), true);
    assert.equal(mxMatchesPolicy('mx1.example.net', ['*.EXAMPLE.net.']), true);
  });

  test('matches when any one of several patterns does', () => {
    assert.equal(mxMatchesPolicy('backup.example.org', ['mail.example.com', '*.example.org']), true);
  });

  test('matches nothing against no patterns or for an empty host', () => {
    assert.equal(mxMatchesPolicy('mail.example.com', []), false);
    assert.equal(mxMatchesPolicy('', ['*.example.com']), false);
    assert.equal(mxMatchesPolicy('.', ['*.']), false);
  });
});
