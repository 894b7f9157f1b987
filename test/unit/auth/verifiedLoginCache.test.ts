import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { VerifiedLoginCache } from '../../../src/auth/verifiedLoginCache.js';
import { ManualClock } from '../../../src/util/clock.js';

const HASH = '$scrypt$ln=15,r=8,p=1$c2FsdA$a2V5';

describe('VerifiedLoginCache', () => {
  test('matches the same user, stored hash and password after a success is remembered', () => {
    const cache = new VerifiedLoginCache(60_000, new ManualClock());
    assert.equal(cache.matches('alice', HASH, 'secret password'), false);
    cache.remember('alice', HASH, 'secret password');
    assert.equal(cache.matches('alice', HASH, 'secret password'), true);
  });

  test('never matches another password or another user', () => {
    const cache = new VerifiedLoginCache(60_000, new ManualClock());
    cache.remember('alice', HASH, 'secret password');
    assert.equal(cache.matches('alice', HASH, 'secret passworD'), false);
    assert.equal(cache.matches('bob', HASH, 'secret password'), false);
  });

  test('stops matching once the stored hash changes, i.e. the password was changed in the users file', () => {
    const cache = new VerifiedLoginCache(60_000, new ManualClock());
    cache.remember('alice', HASH, 'secret password');
    assert.equal(cache.matches('alice', `${HASH}x`, 'secret password'), false);
    assert.equal(cache.matches('alice', HASH, 'secret password'), false, 'the stale entry is gone');
  });

  test('forgets an entry after the TTL', () => {
    const clock = new ManualClock();
    const cache = new VerifiedLoginCache(60_000, clock);
    cache.remember('alice', HASH, 'secret password');
    clock.advance(59_999);
    assert.equal(cache.matches('alice', HASH, 'secret password'), true);
    clock.advance(1);
    assert.equal(cache.matches('alice', HASH, 'secret password'), false);
  });

  test('with a TTL of 0 it remembers nothing', () => {
    const cache = new VerifiedLoginCache(0, new ManualClock());
    cache.remember('alice', HASH, 'secret password');
    assert.equal(cache.matches('alice', HASH, 'secret password'), false);
  });

  test('keeps at most maxEntries, dropping the oldest', () => {
    const cache = new VerifiedLoginCache(60_000, new ManualClock(), 2);
    cache.remember('a', HASH, 'pa');
    cache.remember('b', HASH, 'pb');
    cache.remember('c', HASH, 'pc');
    assert.equal(cache.matches('a', HASH, 'pa'), false);
    assert.equal(cache.matches('b', HASH, 'pb'), true);
    assert.equal(cache.matches('c', HASH, 'pc'), true);
  });
});
