import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { hasExpired, nextAttemptAt } from '../../../src/spool/retrySchedule.js';

const MINUTE = 60_000;
const SCHEDULE = [1 * MINUTE, 5 * MINUTE, 15 * MINUTE];

describe('the retry schedule', () => {
  test('waits the n-th entry after the n-th failed attempt', () => {
    assert.equal(nextAttemptAt({ attempts: 1, now: 1000, schedule: SCHEDULE }), 1000 + MINUTE);
    assert.equal(nextAttemptAt({ attempts: 2, now: 1000, schedule: SCHEDULE }), 1000 + 5 * MINUTE);
    assert.equal(nextAttemptAt({ attempts: 3, now: 1000, schedule: SCHEDULE }), 1000 + 15 * MINUTE);
  });

  test('repeats the last entry past the end of the schedule', () => {
    assert.equal(nextAttemptAt({ attempts: 4, now: 0, schedule: SCHEDULE }), 15 * MINUTE);
    assert.equal(nextAttemptAt({ attempts: 400, now: 0, schedule: SCHEDULE }), 15 * MINUTE);
  });

  test('refuses an attempt count below one and an empty schedule', () => {
    assert.throws(() => nextAttemptAt({ attempts: 0, now: 0, schedule: SCHEDULE }), RangeError);
    assert.throws(() => nextAttemptAt({ attempts: 1.5, now: 0, schedule: SCHEDULE }), RangeError);
    assert.throws(() => nextAttemptAt({ attempts: 1, now: 0, schedule: [] }), RangeError);
  });

  test('expires a message once it has been queued for the maximum age', () => {
    const maxAgeMs = 5 * 24 * 60 * MINUTE;
    assert.equal(hasExpired({ receivedAt: 0, now: maxAgeMs - 1, maxAgeMs }), false);
    assert.equal(hasExpired({ receivedAt: 0, now: maxAgeMs, maxAgeMs }), true);
    assert.equal(hasExpired({ receivedAt: 1000, now: 1000 + maxAgeMs + 1, maxAgeMs }), true);
  });
});
