import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { LoginLockout } from '../../../src/auth/lockout.js';

// rate-limiter-flexible reads the system clock, so the expiry test waits for real; one second
// is the shortest lockout it can express.
const settings = { failures: 3, windowMs: 1000, durationMs: 1000 };

/** One attempt that gets past the lockout and then fails; asserts it was let through. */
async function failOnce(lockout: LoginLockout, ip: string, user: string): Promise<void> {
  assert.deepEqual(await lockout.begin(ip, user), { locked: false }, `attempt from ${ip} as ${user}`);
  await lockout.failed(ip, user);
}

async function fail(lockout: LoginLockout, times: number, ip: string, user: string): Promise<void> {
  for (let i = 0; i < times; i++) await failOnce(lockout, ip, user);
}

async function succeed(lockout: LoginLockout, ip: string, user: string): Promise<void> {
  assert.deepEqual(await lockout.begin(ip, user), { locked: false }, `attempt from ${ip} as ${user}`);
  await lockout.succeeded(ip, user);
}

describe('login lockout', () => {
  test('a client may fail as often as the limit allows and its next attempt is refused', async () => {
    const lockout = new LoginLockout(settings);
    await fail(lockout, 3, '192.0.2.1', 'alice');
    const state = await lockout.begin('192.0.2.1', 'alice');
    assert.equal(state.locked, true);
    assert.ok(state.locked && state.retryAfterMs > 0 && state.retryAfterMs <= 1000, JSON.stringify(state));
  });

  test('attempts begun together are counted before any of them is answered, so only the allowed number get through', async () => {
    const lockout = new LoginLockout({ failures: 5, windowMs: 60_000, durationMs: 60_000 });
    const states = await Promise.all(Array.from({ length: 15 }, () => lockout.begin('192.0.2.10', 'alice')));
    assert.equal(states.filter((state) => !state.locked).length, 5);
    assert.equal(states.filter((state) => state.locked).length, 10);
  });

  test('failures from one IP against many names lock that IP for every name', async () => {
    const lockout = new LoginLockout(settings);
    await failOnce(lockout, '192.0.2.2', 'alice');
    await failOnce(lockout, '192.0.2.2', 'bob');
    await failOnce(lockout, '192.0.2.2', 'carol');
    assert.equal((await lockout.begin('192.0.2.2', 'dave')).locked, true);
    assert.equal((await lockout.begin('192.0.2.3', 'erin')).locked, false);
  });

  test('failures against one name from many IPs lock that name from every IP, whatever its case', async () => {
    const lockout = new LoginLockout(settings);
    await failOnce(lockout, '192.0.2.4', 'alice');
    await failOnce(lockout, '192.0.2.5', 'Alice');
    await failOnce(lockout, '192.0.2.6', 'ALICE');
    assert.equal((await lockout.begin('198.51.100.1', 'alice')).locked, true);
    assert.equal((await lockout.begin('198.51.100.2', 'bob')).locked, false);
  });

  test('an IPv4 client counts the same through an IPv4-mapped IPv6 address', async () => {
    const lockout = new LoginLockout(settings);
    await failOnce(lockout, '::ffff:192.0.2.7', 'x');
    await failOnce(lockout, '::FFFF:192.0.2.7', 'y');
    await failOnce(lockout, '192.0.2.7', 'z');
    assert.equal((await lockout.begin('192.0.2.7', 'w')).locked, true);
  });

  test('a successful login takes back its own counted attempt, so the IP keeps its full allowance', async () => {
    const lockout = new LoginLockout(settings);
    await failOnce(lockout, '192.0.2.11', 'mallory');
    // Far more successes than the limit: none of them uses up an attempt.
    for (let i = 0; i < 6; i++) await succeed(lockout, '192.0.2.11', 'alice');
    await failOnce(lockout, '192.0.2.11', 'oscar');
    await failOnce(lockout, '192.0.2.11', 'trudy');
    assert.equal((await lockout.begin('192.0.2.11', 'alice')).locked, true);
  });

  test('success resets the user counter but not the IP counter', async () => {
    const lockout = new LoginLockout(settings);
    await fail(lockout, 2, '192.0.2.8', 'alice');
    await succeed(lockout, '198.51.100.3', 'alice');
    // The user starts again from zero: three more failures from elsewhere are let through...
    await fail(lockout, 3, '198.51.100.4', 'alice');
    assert.equal((await lockout.begin('198.51.100.5', 'alice')).locked, true);
    // ...while the first IP's two failures still count: one more, and it is locked.
    await failOnce(lockout, '192.0.2.8', 'mallory');
    assert.equal((await lockout.begin('192.0.2.8', 'nobody')).locked, true);
  });

  test('the failure that reaches the limit locks for the lockout duration, longer than the window', async () => {
    const lockout = new LoginLockout({ failures: 2, windowMs: 1000, durationMs: 60_000 });
    await fail(lockout, 2, '192.0.2.12', 'alice');
    const state = await lockout.begin('192.0.2.12', 'alice');
    assert.ok(state.locked && state.retryAfterMs > 1000 && state.retryAfterMs <= 60_000, JSON.stringify(state));
  });

  test('the lock ends once the duration has passed', async () => {
    const lockout = new LoginLockout(settings);
    await fail(lockout, 3, '192.0.2.9', 'alice');
    const state = await lockout.begin('192.0.2.9', 'alice');
    assert.ok(state.locked);
    await sleep(state.retryAfterMs + 100);
    assert.deepEqual(await lockout.begin('192.0.2.9', 'alice'), { locked: false });
  });

  test('durations are rounded up to whole seconds and nonsense settings are refused', () => {
    assert.doesNotThrow(() => new LoginLockout({ failures: 1, windowMs: 1, durationMs: 1500 }));
    assert.throws(() => new LoginLockout({ failures: 0, windowMs: 1000, durationMs: 1000 }), RangeError);
    assert.throws(() => new LoginLockout({ failures: 1.5, windowMs: 1000, durationMs: 1000 }), RangeError);
    assert.throws(() => new LoginLockout({ failures: 3, windowMs: 0, durationMs: 1000 }), RangeError);
    assert.throws(() => new LoginLockout({ failures: 3, windowMs: 1000, durationMs: -1 }), RangeError);
  });
});
