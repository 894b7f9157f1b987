import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { DnsAnswer } from '../../../src/dns/packetResolver.js';
import { ttlCachingResolver } from '../../../src/dns/ttlCache.js';
import { ManualClock } from '../../../src/util/clock.js';

describe('the cache stays bounded and shares work', () => {
  test('past the size cap the oldest entry is dropped first', async () => {
    const asked: string[] = [];
    const lookup = async (name: string): Promise<DnsAnswer> => {
      asked.push(name);
      return { records: [name], ttlSeconds: 3600 };
    };
    const resolve = ttlCachingResolver(lookup, new ManualClock(), { maxEntries: 3 });
    for (const name of ['a.test', 'b.test', 'c.test', 'd.test']) await resolve(name, 'A');
    asked.length = 0;
    for (const name of ['b.test', 'c.test', 'd.test']) await resolve(name, 'A');
    assert.deepEqual(asked, []);
    await resolve('a.test', 'A');
    assert.deepEqual(asked, ['a.test']);
  });

  test('callers asking the same question at once share one query, and each gets the answer', async () => {
    let queries = 0;
    let answer: (value: DnsAnswer) => void = () => undefined;
    const resolve = ttlCachingResolver(() => {
      queries += 1;
      return new Promise((settle) => (answer = settle));
    }, new ManualClock());
    const asked = Array.from({ length: 5 }, () => resolve('example.com', 'A'));
    answer({ records: ['192.0.2.1'], ttlSeconds: 60 });
    for (const records of await Promise.all(asked)) assert.deepEqual(records, ['192.0.2.1']);
    assert.equal(queries, 1);
  });
});
