import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { DnsLookupError } from '../../../src/dns/packetResolver.js';
import { ttlCachingResolver } from '../../../src/dns/ttlCache.js';
import { ManualClock } from '../../../src/util/clock.js';

/** A lookup that always fails with `code` (and the negative TTL an SOA gave, if any), counting questions. */
function failingLookup(code: string, negativeTtlSeconds?: number) {
  let asked = 0;
  const lookup = async (name: string): Promise<never> => {
    asked += 1;
    throw new DnsLookupError(code, 'queryTxt', name, negativeTtlSeconds);
  };
  return { lookup, asked: () => asked };
}

/** Asks until the lookup is asked again; returns how long after the first question that was. */
async function keptFor(code: string, negativeTtlSeconds: number | undefined, stepMs: number): Promise<number> {
  const clock = new ManualClock();
  const { lookup, asked } = failingLookup(code, negativeTtlSeconds);
  const resolve = ttlCachingResolver(lookup, clock);
  const start = clock.now();
  await assert.rejects(resolve('example.com', 'TXT'), { code });
  while (asked() === 1) {
    clock.advance(stepMs);
    await assert.rejects(resolve('example.com', 'TXT'), { code });
  }
  return clock.now() - start;
}

describe('negative answers are kept too (RFC 2308)', () => {
  test('NXDOMAIN is kept for the TTL its SOA gave', async () => {
    assert.equal(await keptFor('ENOTFOUND', 900, 1_000), 900_000);
  });

  test('NODATA is kept for the TTL its SOA gave', async () => {
    assert.equal(await keptFor('ENODATA', 30, 1_000), 30_000);
  });

  test('a negative answer without an SOA is kept a minute', async () => {
    assert.equal(await keptFor('ENOTFOUND', undefined, 1_000), 60_000);
  });

  test('a negative TTL over an hour is kept an hour, and one of zero 5 seconds', async () => {
    assert.equal(await keptFor('ENODATA', 86_400, 60_000), 3_600_000);
    assert.equal(await keptFor('ENODATA', 0, 1_000), 5_000);
  });

  test("a cached negative answer is a fresh error each time, with the first one's code, message and host name", async () => {
    const clock = new ManualClock();
    const resolve = ttlCachingResolver(failingLookup('ENOTFOUND', 60).lookup, clock);
    const errors: Array<Error & { code?: string; syscall?: string; hostname?: string }> = [];
    for (let i = 0; i < 2; i++) await resolve('missing.example', 'TXT').catch((error: Error) => errors.push(error));
    assert.equal(errors.length, 2);
    assert.notEqual(errors[0], errors[1]);
    for (const error of errors) {
      assert.deepEqual(
        { code: error.code, syscall: error.syscall, hostname: error.hostname, message: error.message },
        { code: 'ENOTFOUND', syscall: 'queryTxt', hostname: 'missing.example', message: 'queryTxt ENOTFOUND missing.example' },
      );
    }
  });

  for (const code of ['ETIMEOUT', 'ESERVFAIL', 'EREFUSED', 'ECONNREFUSED']) {
    test(`a temporary failure (${code}) is not kept: the next question asks again`, async () => {
      const clock = new ManualClock();
      const { lookup, asked } = failingLookup(code);
      const resolve = ttlCachingResolver(lookup, clock);
      await assert.rejects(resolve('example.com', 'TXT'), { code });
      await assert.rejects(resolve('example.com', 'TXT'), { code });
      assert.equal(asked(), 2);
    });
  }
});
