import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { cachingResolver } from '../../../src/dns/cachingResolver.js';
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
});
