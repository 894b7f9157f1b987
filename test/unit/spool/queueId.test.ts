import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { createQueueId, isQueueId, QueueIdGenerator, queueIdTime } from '../../../src/spool/queueId.js';
import { ManualClock } from '../../../src/util/clock.js';

describe('queue IDs', () => {
  test('are 16 characters of Crockford base32, safe as file names', () => {
    const id = createQueueId(new ManualClock());
    assert.match(id, /^[0-9A-HJKMNP-TV-Z]{16}$/);
    assert.ok(isQueueId(id));
  });

  test('from one generator are unique and in order among many made in the same millisecond', () => {
    const generator = new QueueIdGenerator(new ManualClock());
    const ids = Array.from({ length: 100_000 }, () => generator.next());
    assert.equal(new Set(ids).size, ids.length);
    assert.deepEqual([...ids].sort(), ids);
  });

  test('from one generator stay in order when the clock steps back', () => {
    const clock = new ManualClock(Date.UTC(2026, 0, 1));
    const generator = new QueueIdGenerator(clock);
    const first = generator.next();
    clock.advance(-5000);
    const second = generator.next();
    assert.ok(second > first);
  });

  test('from one generator count past the random part without repeating', () => {
    const generator = new QueueIdGenerator(new ManualClock(), () => Buffer.from([0xff, 0xff, 0xff, 0xfe]));
    const ids = Array.from({ length: 5 }, () => generator.next());
    assert.equal(new Set(ids).size, 5);
    assert.deepEqual([...ids].sort(), ids);
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
