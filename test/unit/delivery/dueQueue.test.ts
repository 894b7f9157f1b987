import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { DueQueue } from '../../../src/delivery/dueQueue.js';

describe('the due queue', () => {
  test('hands out messages in due order, and only those due', () => {
    const queue = new DueQueue();
    queue.schedule('C', 30);
    queue.schedule('A', 10);
    queue.schedule('B', 20);
    assert.equal(queue.takeDue(5), undefined);
    assert.equal(queue.peekDue(), 10);
    assert.equal(queue.takeDue(25), 'A');
    assert.equal(queue.takeDue(25), 'B');
    assert.equal(queue.takeDue(25), undefined);
    assert.equal(queue.takeDue(100), 'C');
    assert.equal(queue.size, 0);
  });

  test('a rescheduled message surfaces only at its new time', () => {
    const queue = new DueQueue();
    queue.schedule('A', 10);
    queue.schedule('B', 20);
    queue.schedule('A', 50);
    assert.equal(queue.takeDue(30), 'B');
    assert.equal(queue.takeDue(30), undefined);
    assert.equal(queue.peekDue(), 50);
    assert.equal(queue.takeDue(50), 'A');
  });

  test('a removed message never surfaces', () => {
    const queue = new DueQueue();
    queue.schedule('A', 10);
    queue.schedule('B', 10);
    queue.remove('A');
    assert.equal(queue.takeDue(10), 'B');
    assert.equal(queue.takeDue(10), undefined);
    assert.equal(queue.peekDue(), undefined);
  });

  test('equal due times come out in ID order, and a large random load comes out sorted', () => {
    const queue = new DueQueue();
    const entries = Array.from({ length: 5000 }, (_, i) => ({ id: `M${String(i).padStart(5, '0')}`, due: Math.floor(Math.random() * 100) }));
    for (const { id, due } of entries) queue.schedule(id, due);
    const expected = [...entries].sort((a, b) => a.due - b.due || (a.id < b.id ? -1 : 1)).map((e) => e.id);
    const taken: string[] = [];
    for (let id = queue.takeDue(1000); id !== undefined; id = queue.takeDue(1000)) taken.push(id);
    assert.deepEqual(taken, expected);
  });

  test('rescheduling and removing many times does not let stale entries pile up', () => {
    const queue = new DueQueue();
    for (let i = 0; i < 100; i++) queue.schedule(`M${i}`, 1_000_000);
    for (let round = 0; round < 100; round++) {
      for (let i = 0; i < 100; i++) queue.schedule(`M${i}`, round);
    }
    assert.ok(queue.heapSize <= 2 * queue.size + 1024, `heap holds ${queue.heapSize} entries for ${queue.size} messages`);
    assert.equal(queue.takeDue(1_000_000), 'M0');
    assert.equal(queue.peekDue(), 99);
  });
});
