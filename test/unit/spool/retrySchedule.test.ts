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

  test('spreads each wait by the jitter fraction either way, as the random source says', () => {
    const at = (random: number) => nextAttemptAt({ attempts: 2, now: 0, schedule: SCHEDULE, jitter: 0.1, random: () => random });
    assert.equal(at(0), 4.5 * MINUTE);
    assert.equal(at(0.5), 5 * MINUTE);
    assert.equal(at(0.999999), Math.round(5 * MINUTE * (1 + 0.1 * (2 * 0.999999 - 1))));
    assert.ok(at(0.999999) <= 5.5 * MINUTE);
  });

  test('gives different times to messages deferred together when jitter is on', () => {
    const times = new Set(Array.from({ length: 50 }, () => nextAttemptAt({ attempts: 1, now: 0, schedule: SCHEDULE, jitter: 0.2 })));
    assert.ok(times.size > 10, `only ${times.size} distinct times`);
    for (const time of times) assert.ok(time >= 0.8 * MINUTE && time <= 1.2 * MINUTE);
  });

  test('refuses a jitter of one or more, or below zero', () => {
    assert.throws(() => nextAttemptAt({ attempts: 1, now: 0, schedule: SCHEDULE, jitter: 1 }), RangeError);
    assert.throws(() => nextAttemptAt({ attempts: 1, now: 0, schedule: SCHEDULE, jitter: -0.1 }), RangeError);
  });

  test('expires a message once it has been queued for the maximum age', () => {
    const maxAgeMs = 5 * 24 * 60 * MINUTE;
    assert.equal(hasExpired({ receivedAt: 0, now: maxAgeMs - 1, maxAgeMs }), false);
    assert.equal(hasExpired({ receivedAt: 0, now: maxAgeMs, maxAgeMs }), true);
    assert.equal(hasExpired({ receivedAt: 1000, now: 1000 + maxAgeMs + 1, maxAgeMs }), true);
  });
});
