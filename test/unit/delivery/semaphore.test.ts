import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Semaphore } from '../../../src/delivery/semaphore.js';

describe('the semaphore', () => {
  test('holds back the caller past the limit until a slot is given back, first come first served', async () => {
    const slots = new Semaphore(2);
    const order: string[] = [];
    const a = await slots.acquire();
    const b = await slots.acquire();
    const c = slots.acquire().then((release) => (order.push('c'), release));
    const d = slots.acquire().then((release) => (order.push('d'), release));
    await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(order, []);
    a();
    a(); // a second release of the same slot changes nothing
    const releaseC = await c;
    await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(order, ['c']);
    b();
    const releaseD = await d;
    assert.deepEqual(order, ['c', 'd']);
    assert.equal(slots.idle, false);
    releaseC();
    releaseD();
    assert.equal(slots.idle, true);
  });

  test('refuses a limit below one', () => {
    assert.throws(() => new Semaphore(0), RangeError);
  });
});
