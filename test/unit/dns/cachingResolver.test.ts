import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { cachingResolver } from '../../../src/dns/cachingResolver.js';
import { ttlCachingResolver } from '../../../src/dns/ttlCache.js';
import { ManualClock } from '../../../src/util/clock.js';

describe('the caching resolver', () => {
  test('callers asking the same question at once share one query', async () => {
    let queries = 0;
    let answer: (records: unknown) => void = () => undefined;
    const resolver = cachingResolver(
      () => {
        queries += 1;
        return new Promise((resolve) => (answer = resolve));
      },
      new ManualClock(),
    );
    const asked = Array.from({ length: 5 }, () => resolver('example.com', 'MX'));
    answer([{ exchange: 'mx.example.com', priority: 10 }]);
    const answers = await Promise.all(asked);
    assert.equal(queries, 1);
    for (const records of answers) assert.deepEqual(records, [{ exchange: 'mx.example.com', priority: 10 }]);
  });

  test('a temporary failure is shared by the callers waiting on it, and not remembered', async () => {
    let queries = 0;
    const resolver = cachingResolver(async () => {
      queries += 1;
      throw Object.assign(new Error('queryMx ETIMEOUT example.com'), { code: 'ETIMEOUT' });
    }, new ManualClock());
    const results = await Promise.allSettled([resolver('example.com', 'MX'), resolver('example.com', 'MX')]);
    assert.deepEqual(results.map((r) => r.status), ['rejected', 'rejected']);
    assert.equal(queries, 1);
    await assert.rejects(resolver('example.com', 'MX'), { code: 'ETIMEOUT' });
    assert.equal(queries, 2);
  });

  test('a resolver that already keeps answers for their TTL is used as it is, not held longer behind a fixed TTL', async () => {
    const clock = new ManualClock();
    let queries = 0;
    const ttlAware = ttlCachingResolver(async () => ({ records: [`answer ${++queries}`], ttlSeconds: 10 }), clock);
    const resolver = cachingResolver(ttlAware, clock);
    assert.equal(resolver, ttlAware);
    await resolver('example.com', 'TXT');
    clock.advance(10_000);
    assert.deepEqual(await resolver('example.com', 'TXT'), ['answer 2']);
  });
});
