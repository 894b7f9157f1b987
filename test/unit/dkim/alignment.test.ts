import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { signingDomainFor } from '../../../src/dkim/alignment.js';

const keysFor = (...domains: string[]) => (domain: string) => domains.includes(domain);

describe('which domain signs mail From a domain', () => {
  test('the From domain signs its own mail when it has a key', () => {
    assert.equal(signingDomainFor('news.example.com', keysFor('news.example.com', 'example.com')), 'news.example.com');
  });

  test('a subdomain without a key is signed by its parent domain (relaxed alignment)', () => {
    assert.equal(signingDomainFor('news.example.com', keysFor('example.com')), 'example.com');
  });

  test('the closest parent with a key wins', () => {
    assert.equal(signingDomainFor('a.b.example.com', keysFor('example.com', 'b.example.com')), 'b.example.com');
  });

  test('From domains are compared case-insensitively and without a final dot', () => {
    assert.equal(signingDomainFor('News.Example.COM.', keysFor('example.com')), 'example.com');
  });

  test('an internationalised From domain is matched in its ASCII form', () => {
    assert.equal(signingDomainFor('post.bücher.example', keysFor('xn--bcher-kva.example')), 'xn--bcher-kva.example');
  });

  test('a domain with no key of its own or of a parent is not signed', () => {
    assert.equal(signingDomainFor('example.net', keysFor('example.com')), undefined);
    assert.equal(signingDomainFor('notexample.com', keysFor('example.com')), undefined);
  });

  test('a key for a public suffix never signs for the domains under it, whose signature would not align', () => {
    assert.equal(signingDomainFor('shop.example.co.uk', keysFor('co.uk')), undefined);
    assert.equal(signingDomainFor('shop.example.co.uk', keysFor('co.uk', 'example.co.uk')), 'example.co.uk');
  });

  test('a top-level domain never signs', () => {
    assert.equal(signingDomainFor('example.com', keysFor('com')), undefined);
  });

  test('an address literal has no domain to sign for', () => {
    assert.equal(signingDomainFor('[192.0.2.1]', () => true), undefined);
  });
});
