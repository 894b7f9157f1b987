import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { DnsAnswer } from '../../../src/dns/packetResolver.js';
import { ttlCachingResolver } from '../../../src/dns/ttlCache.js';
import { ManualClock } from '../../../src/util/clock.js';

/** A lookup answering every question with `ttlSeconds`, counting the questions it is asked. */
function countingLookup(ttlSeconds: number) {
  const asked: string[] = [];
  const lookup = async (name: string, rrtype: string): Promise<DnsAnswer> => {
    asked.push(`${rrtype} ${name}`);
    return { records: [`answer ${asked.length}`], ttlSeconds };
  };
  return { asked, lookup };
}

describe('answers are kept for their TTL', () => {
  test('an answer is served from the cache until its TTL passes, then asked again', async () => {
    const clock = new ManualClock();
    const { asked, lookup } = countingLookup(300);
    const resolve = ttlCachingResolver(lookup, clock);
    assert.deepEqual(await resolve('example.com', 'TXT'), ['answer 1']);
    clock.advance(300_000 - 1);
    assert.deepEqual(await resolve('example.com', 'TXT'), ['answer 1']);
    assert.equal(asked.length, 1);
    clock.advance(1);
    assert.deepEqual(await resolve('example.com', 'TXT'), ['answer 2']);
    assert.equal(asked.length, 2);
  });

  test('a TTL of zero is kept 5 seconds, so a burst of messages shares one answer', async () => {
    const clock = new ManualClock();
    const { asked, lookup } = countingLookup(0);
    const resolve = ttlCachingResolver(lookup, clock);
    await resolve('example.com', 'A');
    clock.advance(4_999);
    await resolve('example.com', 'A');
    assert.equal(asked.length, 1);
    clock.advance(1);
    await resolve('example.com', 'A');
    assert.equal(asked.length, 2);
  });

  test('a TTL over a day is kept one day', async () => {
    const clock = new ManualClock();
    const { asked, lookup } = countingLookup(7 * 86_400);
    const resolve = ttlCachingResolver(lookup, clock);
    await resolve('example.com', 'MX');
    clock.advance(86_400_000 - 1);
    await resolve('example.com', 'MX');
    assert.equal(asked.length, 1);
    clock.advance(1);
    await resolve('example.com', 'MX');
    assert.equal(asked.length, 2);
  });

  test('the bounds can be set', async () => {
    const clock = new ManualClock();
    const { asked, lookup } = countingLookup(1);
    const resolve = ttlCachingResolver(lookup, clock, { minTtlMs: 0 });
    await resolve('example.com', 'A');
    clock.advance(1_000);
    await resolve('example.com', 'A');
    assert.equal(asked.length, 2);
  });

  test('questions differing only in the case of the name or a root dot share an entry; other types do not', async () => {
    const clock = new ManualClock();
    const { asked, lookup } = countingLookup(60);
    const resolve = ttlCachingResolver(lookup, clock);
    await resolve('Example.COM', 'A');
    await resolve('example.com.', 'a');
    assert.equal(asked.length, 1);
    await resolve('example.com', 'AAAA');
    assert.equal(asked.length, 2);
  });

  test('each caller gets its own copy of the records, so sorting one does not change the next', async () => {
    const clock = new ManualClock();
    const resolve = ttlCachingResolver(async () => ({ records: [{ exchange: 'b.example', priority: 20 }, { exchange: 'a.example', priority: 10 }], ttlSeconds: 60 }), clock);
    const first = (await resolve('example.com', 'MX')) as Array<{ priority: number }>;
    first.sort((x, y) => x.priority - y.priority);
    first.pop();
    assert.deepEqual(await resolve('example.com', 'MX'), [
      { exchange: 'b.example', priority: 20 },
      { exchange: 'a.example', priority: 10 },
    ]);
  });
});
