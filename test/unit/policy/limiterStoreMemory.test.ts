import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { createLimiterStore } from '../../../src/policy/limiterStore.js';

// rate-limiter-flexible reads the system clock, so the tests that need a window to end use
// the shortest one it keeps (1 s) and wait for real.

/** Waits until just past `resetAt`. */
async function waitUntil(resetAt: number): Promise<void> {
  await sleep(Math.max(0, resetAt - Date.now()) + 50);
}

describe('memory limiter store', () => {
  test('a key is allowed up to its limit and refused after it, with the end of its window', async () => {
    const store = createLimiterStore({ store: 'memory' });
    const before = Date.now();
    for (let i = 1; i <= 3; i++) {
      assert.equal((await store.consume('alice', 1, 3, 60_000)).allowed, true, `count ${i}`);
    }
    const refused = await store.consume('alice', 1, 3, 60_000);
    assert.equal(refused.allowed, false);
    assert.ok(refused.resetAt > before && refused.resetAt <= Date.now() + 60_000, `resetAt ${refused.resetAt}`);
    await store.close();
  });

  test('points count together, so one large count can use up the limit at once', async () => {
    const store = createLimiterStore({ store: 'memory' });
    assert.equal((await store.consume('alice', 700, 1000, 60_000)).allowed, true);
    assert.equal((await store.consume('alice', 300, 1000, 60_000)).allowed, true);
    assert.equal((await store.consume('alice', 1, 1000, 60_000)).allowed, false);
    assert.equal((await store.consume('bob', 1001, 1000, 60_000)).allowed, false);
  });

  test('the count starts again once the window has ended', async () => {
    const store = createLimiterStore({ store: 'memory' });
    await store.consume('alice', 2, 2, 1000);
    const refused = await store.consume('alice', 1, 2, 1000);
    assert.equal(refused.allowed, false);
    await waitUntil(refused.resetAt);
    assert.equal((await store.consume('alice', 1, 2, 1000)).allowed, true);
    assert.equal((await store.consume('alice', 1, 2, 1000)).allowed, true);
    assert.equal((await store.consume('alice', 1, 2, 1000)).allowed, false);
  });

  test('keys and windows are counted apart', async () => {
    const store = createLimiterStore({ store: 'memory' });
    assert.equal((await store.consume('alice', 1, 1, 60_000)).allowed, true);
    assert.equal((await store.consume('alice', 1, 1, 60_000)).allowed, false);
    assert.equal((await store.consume('bob', 1, 1, 60_000)).allowed, true);
    assert.equal((await store.consume('alice', 1, 1, 3_600_000)).allowed, true);
  });

  test('calls made together are all counted, so exactly the limit is allowed', async () => {
    const store = createLimiterStore({ store: 'memory' });
    const answers = await Promise.all(Array.from({ length: 25 }, () => store.consume('alice', 1, 10, 60_000)));
    assert.equal(answers.filter((answer) => answer.allowed).length, 10);
  });

  test('bad arguments are refused with the value that is wrong', async () => {
    const store = createLimiterStore({ store: 'memory' });
    await assert.rejects(store.consume('', 1, 1, 1000), /non-empty/);
    await assert.rejects(store.consume('k', 1.5, 1, 1000), /points.*1\.5/);
    await assert.rejects(store.consume('k', 1, 0, 1000), /at least 1, not 0/);
    await assert.rejects(store.consume('k', 1, 1, 0), /not 0 ms/);
    await assert.rejects(store.consume('k', 1, 1, 30 * 86_400_000), /at most 24 days/);
  });
});
