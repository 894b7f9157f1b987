import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { LimiterStore } from '../../../src/policy/types.js';
import { ManualClock } from '../../../src/util/clock.js';
import { context, rule } from './rateLimitSupport.js';

const NOON = Date.UTC(2026, 0, 1, 12, 0, 0);

/** A store whose windows answer as told: `resets` maps a window (ms) to when it ends, and it refuses when `refuse` says so. */
function fixedStore(resets: Record<number, number>, refuse: (windowMs: number) => boolean): LimiterStore {
  return {
    async consume(_key, _points, _limit, windowMs) {
      return { allowed: !refuse(windowMs), resetAt: resets[windowMs]! };
    },
  };
}

async function deferText(resetAt: number, name = 'per-user-hourly'): Promise<string> {
  const limiter = fixedStore({ 3_600_000: resetAt }, () => true);
  const verdict = await rule({ limits: [{ max: 1, per: '1h' }] }, { name, limiter, clock: new ManualClock(NOON) }).evaluate(context('data'));
  assert.equal(verdict.action, 'defer');
  return verdict.action === 'defer' ? verdict.text : '';
}

describe('rate-limit defer text', () => {
  test('names the rule and the UTC time the window ends', async () => {
    assert.equal(await deferText(Date.UTC(2026, 0, 1, 12, 5, 0)), "rate limit 'per-user-hourly' reached, retry after 12:05Z");
  });

  test('rounds the time up to the minute so that retrying at the time named is not too early', async () => {
    assert.equal(await deferText(Date.UTC(2026, 0, 1, 12, 4, 1)), "rate limit 'per-user-hourly' reached, retry after 12:05Z");
  });

  test('shows the time alone up to a day ahead, even past midnight', async () => {
    assert.equal(await deferText(Date.UTC(2026, 0, 2, 11, 30, 0)), "rate limit 'per-user-hourly' reached, retry after 11:30Z");
  });

  test('gives the date when the window ends more than a day from now', async () => {
    assert.equal(await deferText(Date.UTC(2026, 0, 4, 9, 0, 0)), "rate limit 'per-user-hourly' reached, retry after 2026-01-04 09:00Z");
  });

  test('with several windows refusing, names the time the last of them ends', async () => {
    const limiter = fixedStore({ 60_000: Date.UTC(2026, 0, 1, 12, 1), 3_600_000: Date.UTC(2026, 0, 1, 12, 40), 86_400_000: Date.UTC(2026, 0, 2, 3, 0) }, (w) => w !== 86_400_000);
    const limits = [{ max: 1, per: '1m' }, { max: 1, per: '1h' }, { max: 1, per: '1d' }];
    const verdict = await rule({ limits }, { name: 'burst', limiter, clock: new ManualClock(NOON) }).evaluate(context('data'));
    assert.deepEqual(verdict, {
      action: 'defer',
      code: 450,
      enhanced: '4.7.1',
      text: "rate limit 'burst' reached, retry after 12:40Z",
      annotations: { tags: ['rate-limited'] },
    });
  });

  test('keeps the reply on one line whatever the rule is called', async () => {
    const text = await deferText(Date.UTC(2026, 0, 1, 12, 5, 0), 'evil\r\n250 ok');
    assert.doesNotMatch(text, /[\r\n]/);
  });
});
