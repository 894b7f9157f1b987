import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { LoginLockout } from '../../../src/auth/lockout.js';

// rate-limiter-flexible reads the system clock, so the expiry test waits for real; one second
// is the shortest lockout it can express.
const settings = { failures: 3, windowMs: 1000, durationMs: 1000 };

async function fail(lockout: LoginLockout, times: number, ip: string, user: string): Promise<void> {
  for (let i = 0; i < times; i++) await lockout.recordFailure(ip, user);
}

describe('login lockout', () => {
  test('a client stays unlocked below the failure limit and is locked when it reaches it', async () => {
    const lockout = new LoginLockout(settings);
    await fail(lockout, 2, '192.0.2.1', 'alice');
    assert.deepEqual(await lockout.check('192.0.2.1', 'alice'), { locked: false });

    await lockout.recordFailure('192.0.2.1', 'alice');
    const state = await lockout.check('192.0.2.1', 'alice');
    assert.equal(state.locked, true);
    assert.ok(state.locked && state.retryAfterMs > 0 && state.retryAfterMs <= 1000, JSON.stringify(state));
  });

  test('failures from one IP against many names lock that IP for every name', async () => {
    const lockout = new LoginLockout(settings);
    await lockout.recordFailure('192.0.2.2', 'alice');
    await lockout.recordFailure('192.0.2.2', 'bob');
    await lockout.recordFailure('192.0.2.2', 'carol');
    assert.equal((await lockout.check('192.0.2.2', 'dave')).locked, true);
    assert.equal((await lockout.check('192.0.2.3', 'dave')).locked, false);
  });

  test('failures against one name from many IPs lock that name from every IP, whatever its case', async () => {
    const lockout = new LoginLockout(settings);
    await lockout.recordFailure('192.0.2.4', 'alice');
    await lockout.recordFailure('192.0.2.5', 'Alice');
    await lockout.recordFailure('192.0.2.6', 'ALICE');
    assert.equal((await lockout.check('198.51.100.1', 'alice')).locked, true);
    assert.equal((await lockout.check('198.51.100.1', 'bob')).locked, false);
  });

  test('an IPv4 client counts the same through an IPv4-mapped IPv6 address', async () => {
    const lockout = new LoginLockout(settings);
    await fail(lockout, 2, '::ffff:192.0.2.7', 'x');
    await lockout.recordFailure('192.0.2.7', 'y');
    assert.equal((await lockout.check('192.0.2.7', 'z')).locked, true);
  });

  test('success resets the user counter but not the IP counter', async () => {
    const lockout = new LoginLockout(settings);
    await fail(lockout, 2, '192.0.2.8', 'alice');
    await lockout.recordSuccess('alice');
    // The user starts again from zero: two more failures from elsewhere do not lock it...
    await fail(lockout, 2, '198.51.100.2', 'alice');
    assert.equal((await lockout.check('198.51.100.3', 'alice')).locked, false);
    // ...while the first IP's two failures still count: one more locks it.
    await lockout.recordFailure('192.0.2.8', 'mallory');
    assert.equal((await lockout.check('192.0.2.8', 'nobody')).locked, true);
  });

  test('the lock ends once the duration has passed', async () => {
    const lockout = new LoginLockout(settings);
    await fail(lockout, 3, '192.0.2.9', 'alice');
    const state = await lockout.check('192.0.2.9', 'alice');
    assert.ok(state.locked);
    await sleep(state.retryAfterMs + 100);
    assert.deepEqual(await lockout.check('192.0.2.9', 'alice'), { locked: false });
  });

  test('durations are rounded up to whole seconds and nonsense settings are refused', () => {
    assert.doesNotThrow(() => new LoginLockout({ failures: 1, windowMs: 1, durationMs: 1500 }));
    assert.throws(() => new LoginLockout({ failures: 0, windowMs: 1000, durationMs: 1000 }), RangeError);
    assert.throws(() => new LoginLockout({ failures: 1.5, windowMs: 1000, durationMs: 1000 }), RangeError);
    assert.throws(() => new LoginLockout({ failures: 3, windowMs: 0, durationMs: 1000 }), RangeError);
    assert.throws(() => new LoginLockout({ failures: 3, windowMs: 1000, durationMs: -1 }), RangeError);
  });
});
