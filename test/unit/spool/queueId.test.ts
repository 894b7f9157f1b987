import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { createQueueId, isQueueId, queueIdTime } from '../../../src/spool/queueId.js';
import { ManualClock } from '../../../src/util/clock.js';

describe('queue IDs', () => {
  test('are 16 characters of Crockford base32, safe as file names', () => {
    const id = createQueueId(new ManualClock());
    assert.match(id, /^[0-9A-HJKMNP-TV-Z]{16}$/);
    assert.ok(isQueueId(id));
  });

  test('are unique among many made in the same millisecond', () => {
    const clock = new ManualClock();
    const ids = new Set(Array.from({ length: 10_000 }, () => createQueueId(clock)));
    assert.equal(ids.size, 10_000);
  });

  test('sort by the time they were made', () => {
    const clock = new ManualClock(Date.UTC(2026, 0, 1));
    const ids: string[] = [];
    for (let i = 0; i < 200; i++) {
      ids.push(createQueueId(clock));
      clock.advance(1 + (i % 7) * 997);
    }
    assert.deepEqual([...ids].sort(), ids);
  });

  test('carry their creation time and the random bits given', () => {
    const clock = new ManualClock(Date.UTC(2026, 5, 1, 12, 0, 0, 123));
    const zeros = createQueueId(clock, () => Buffer.alloc(4, 0));
    const ones = createQueueId(clock, () => Buffer.alloc(4, 0xff));
    assert.equal(queueIdTime(zeros), clock.now());
    assert.equal(queueIdTime(ones), clock.now());
    assert.ok(zeros < ones);
    assert.equal(zeros.slice(0, 9), ones.slice(0, 9));
  });

  test('refuse a clock outside 48 bits', () => {
    assert.throws(() => createQueueId(new ManualClock(-1)), RangeError);
    assert.throws(() => createQueueId(new ManualClock(2 ** 48)), RangeError);
  });
});
