import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { LoginLockout, type LockScope } from '../../../src/auth/lockout.js';
import { ManualClock } from '../../../src/util/clock.js';

describe('lockouts as events', () => {
  test('failures answered together lock once per scope, not once per failure', async () => {
    const locks: LockScope[] = [];
    const lockout = new LoginLockout({ failures: 3, windowMs: 60_000, durationMs: 60_000, onLock: (scope) => locks.push(scope) });
    const begun = await Promise.all([1, 2, 3].map(() => lockout.begin('192.0.2.1', 'alice')));
    assert.ok(begun.every((state) => !state.locked));
    await Promise.all([1, 2, 3].map(() => lockout.failed('192.0.2.1', 'alice')));
    assert.deepEqual(locks.sort(), ['ip', 'user']);
  });

  test('failures below the allowance lock nothing, and a lock that ran out can begin again', async () => {
    const locks: LockScope[] = [];
    const clock = new ManualClock();
    const lockout = new LoginLockout({ failures: 2, windowMs: 60_000, durationMs: 60_000, onLock: (scope) => locks.push(scope), clock });
    await lockout.begin('192.0.2.2', 'bob');
    await lockout.failed('192.0.2.2', 'bob');
    assert.deepEqual(locks, []);
    await lockout.begin('192.0.2.2', 'bob');
    await lockout.failed('192.0.2.2', 'bob');
    assert.deepEqual(locks.sort(), ['ip', 'user']);
    // A failure reported again while the lock holds (one begun before it) begins nothing new.
    await lockout.failed('192.0.2.2', 'bob');
    assert.equal(locks.length, 2);
    // Once this process's record of the lock has run out, another lock on the same keys counts.
    clock.advance(60_000);
    await lockout.failed('192.0.2.2', 'bob');
    assert.equal(locks.length, 4);
  });
});
