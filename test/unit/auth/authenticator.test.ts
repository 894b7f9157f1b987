import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Authenticator, type AuthenticatorDeps } from '../../../src/auth/authenticator.js';
import { LoginLockout, type LoginLockoutOptions } from '../../../src/auth/lockout.js';
import { hashPassword } from '../../../src/auth/passwordHash.js';
import { UserStore } from '../../../src/auth/userStore.js';
import { VerifiedLoginCache } from '../../../src/auth/verifiedLoginCache.js';
import { ManualClock, type Clock } from '../../../src/util/clock.js';
import { silentLogger } from '../../../src/util/logger.js';
import { tempDir } from './support.js';

const PASSWORD = 'alice-has-a-long-password';

interface SetupOptions {
  lockout?: LoginLockoutOptions;
  /** Everything else the Authenticator takes; the failure delay is 0 unless given. */
  deps?: Partial<Omit<AuthenticatorDeps, 'users' | 'lockout'>>;
}

async function setup(t: { after: (fn: () => void) => void }, options: SetupOptions = {}) {
  const { dir, cleanup } = tempDir();
  t.after(cleanup);
  const path = join(dir, 'users.yaml');
  writeFileSync(
    path,
    `users:\n  alice:\n    password: "${await hashPassword(PASSWORD)}"\n    senders: [alice@example.com]\n    groups: [staff]\n`,
  );
  const { store } = await UserStore.open({ path, logger: silentLogger(), watch: false });
  const lockout = new LoginLockout(options.lockout ?? { failures: 3, windowMs: 1000, durationMs: 1000 });
  return new Authenticator({ users: store, lockout, failureDelayMs: 0, ...options.deps });
}

/** A clock that moves on by `stepMs` every time it is read: an attempt seems to take stepMs. */
function steppingClock(stepMs: number): Clock {
  const clock = new ManualClock();
  return {
    now() {
      const now = clock.now();
      clock.advance(stepMs);
      return now;
    },
  };
}

/** A sleep that only records how long it was asked to wait. */
function recordingSleep(): { sleep: (ms: number) => Promise<void>; waits: number[] } {
  const waits: number[] = [];
  return { waits, sleep: async (ms) => void waits.push(ms) };
}

describe('authenticator', () => {
  test('the right password gives the user with senders and groups, and no hash', async (t) => {
    const auth = await setup(t);
    const outcome = await auth.authenticate({ username: 'alice', password: PASSWORD, clientIp: '192.0.2.1' });
    assert.deepEqual(outcome, {
      result: 'success',
      user: { name: 'alice', senders: ['alice@example.com'], groups: ['staff'] },
    });
  });

  test('a wrong password and an unknown user get the same answer', async (t) => {
    const auth = await setup(t, { lockout: { failures: 10, windowMs: 1000, durationMs: 1000 } });
    assert.deepEqual(await auth.authenticate({ username: 'alice', password: 'wrong', clientIp: '192.0.2.2' }), { result: 'invalid' });
    assert.deepEqual(await auth.authenticate({ username: 'mallory', password: PASSWORD, clientIp: '192.0.2.2' }), { result: 'invalid' });
    assert.deepEqual(await auth.authenticate({ username: 'Alice', password: PASSWORD, clientIp: '192.0.2.2' }), { result: 'invalid' });
  });

  test('a locked user is refused even with the right password, until the lock ends', async (t) => {
    // A long window: three scrypt checks on a busy machine must still fall into one.
    const auth = await setup(t, { lockout: { failures: 3, windowMs: 60_000, durationMs: 1000 } });
    for (const ip of ['192.0.2.3', '192.0.2.4', '192.0.2.5']) {
      assert.equal((await auth.authenticate({ username: 'alice', password: 'guess', clientIp: ip })).result, 'invalid');
    }
    const locked = await auth.authenticate({ username: 'alice', password: PASSWORD, clientIp: '198.51.100.1' });
    assert.equal(locked.result, 'locked');
    assert.ok(locked.result === 'locked' && locked.retryAfterMs > 0);

    await sleep(locked.retryAfterMs + 100);
    assert.equal((await auth.authenticate({ username: 'alice', password: PASSWORD, clientIp: '198.51.100.1' })).result, 'success');
  });

  test('wrong passwords sent all at once get exactly as many tries as the limit allows, the rest are locked out', async (t) => {
    const auth = await setup(t, { lockout: { failures: 5, windowMs: 60_000, durationMs: 60_000 } });
    const outcomes = await Promise.all(
      Array.from({ length: 15 }, (_, i) => auth.authenticate({ username: 'alice', password: `guess ${i}`, clientIp: '192.0.2.30' })),
    );
    const results = outcomes.map((outcome) => outcome.result);
    assert.equal(results.filter((result) => result === 'invalid').length, 5, results.join(' '));
    assert.equal(results.filter((result) => result === 'locked').length, 10, results.join(' '));
  });

  test('a successful login does not count as a failed attempt of its IP', async (t) => {
    const auth = await setup(t, { lockout: { failures: 3, windowMs: 60_000, durationMs: 60_000 } });
    const ip = '192.0.2.31';
    // Different unknown names, so only the IP's count can lock.
    assert.equal((await auth.authenticate({ username: 'mallory', password: 'x', clientIp: ip })).result, 'invalid');
    assert.equal((await auth.authenticate({ username: 'trudy', password: 'x', clientIp: ip })).result, 'invalid');
    for (let i = 0; i < 3; i++) {
      assert.equal((await auth.authenticate({ username: 'alice', password: PASSWORD, clientIp: ip })).result, 'success', `login ${i + 1}`);
    }
    assert.equal((await auth.authenticate({ username: 'oscar', password: 'x', clientIp: ip })).result, 'invalid');
    assert.equal((await auth.authenticate({ username: 'alice', password: PASSWORD, clientIp: ip })).result, 'locked');
  });

  test('a successful login clears the earlier failures of that user', async (t) => {
    const auth = await setup(t);
    await auth.authenticate({ username: 'alice', password: 'typo', clientIp: '192.0.2.6' });
    await auth.authenticate({ username: 'alice', password: 'typo', clientIp: '192.0.2.7' });
    assert.equal((await auth.authenticate({ username: 'alice', password: PASSWORD, clientIp: '192.0.2.8' })).result, 'success');
    await auth.authenticate({ username: 'alice', password: 'typo', clientIp: '192.0.2.9' });
    await auth.authenticate({ username: 'alice', password: 'typo', clientIp: '192.0.2.10' });
    assert.equal((await auth.authenticate({ username: 'alice', password: PASSWORD, clientIp: '192.0.2.11' })).result, 'success');
  });

  test('a remembered login is not accepted any more once the password is changed in the users file', async (t) => {
    const { dir, cleanup } = tempDir();
    t.after(cleanup);
    const path = join(dir, 'users.yaml');
    const write = async (password: string) =>
      writeFileSync(path, `users:\n  alice:\n    password: "${await hashPassword(password)}"\n`);
    await write(PASSWORD);
    const { store } = await UserStore.open({ path, logger: silentLogger(), watch: false });
    const auth = new Authenticator({
      users: store,
      lockout: new LoginLockout({ failures: 10, windowMs: 1000, durationMs: 1000 }),
      cache: new VerifiedLoginCache(60_000, new ManualClock()),
      failureDelayMs: 0,
    });
    const login = (password: string) => auth.authenticate({ username: 'alice', password, clientIp: '192.0.2.20' });
    assert.equal((await login(PASSWORD)).result, 'success');
    assert.equal((await login(PASSWORD)).result, 'success', 'the second login is served from the cache');
    await write('a brand new password');
    assert.equal(store.reload(), true);
    assert.equal((await login(PASSWORD)).result, 'invalid');
    assert.equal((await login('a brand new password')).result, 'success');
  });

  test('a locked user is refused even when the password is remembered from an earlier login', async (t) => {
    const auth = await setup(t, {
      lockout: { failures: 3, windowMs: 60_000, durationMs: 60_000 },
      deps: { cache: new VerifiedLoginCache(60_000, new ManualClock()) },
    });
    assert.equal((await auth.authenticate({ username: 'alice', password: PASSWORD, clientIp: '192.0.2.40' })).result, 'success');
    for (const ip of ['198.51.100.41', '198.51.100.42', '198.51.100.43']) {
      assert.equal((await auth.authenticate({ username: 'alice', password: 'guess', clientIp: ip })).result, 'invalid');
    }
    assert.equal((await auth.authenticate({ username: 'alice', password: PASSWORD, clientIp: '192.0.2.40' })).result, 'locked');
  });

  test('logins served from the remembered password give their counted attempt back like any other success', async (t) => {
    const auth = await setup(t, {
      lockout: { failures: 2, windowMs: 60_000, durationMs: 60_000 },
      deps: { cache: new VerifiedLoginCache(60_000, new ManualClock()) },
    });
    for (let i = 0; i < 5; i++) {
      assert.equal((await auth.authenticate({ username: 'alice', password: PASSWORD, clientIp: '192.0.2.50' })).result, 'success', `login ${i + 1}`);
    }
  });

  describe('failure delay', () => {
    test('a wrong password is answered only after the rest of the delay, with the jitter added', async (t) => {
      const { sleep: recorder, waits } = recordingSleep();
      // The attempt seems to take 300 ms; with random() = 0.5 the target is 2000 ms + 5%.
      const auth = await setup(t, { deps: { failureDelayMs: 2000, clock: steppingClock(300), sleep: recorder, random: () => 0.5 } });
      assert.deepEqual(await auth.authenticate({ username: 'alice', password: 'wrong', clientIp: '192.0.2.60' }), { result: 'invalid' });
      assert.deepEqual(waits, [1800]);
    });

    test('an unknown user name and a locked-out login are delayed alike', async (t) => {
      const { sleep: recorder, waits } = recordingSleep();
      const auth = await setup(t, {
        lockout: { failures: 1, windowMs: 60_000, durationMs: 60_000 },
        deps: { failureDelayMs: 2000, clock: steppingClock(300), sleep: recorder, random: () => 0 },
      });
      assert.equal((await auth.authenticate({ username: 'nobody', password: 'x', clientIp: '192.0.2.61' })).result, 'invalid');
      assert.equal((await auth.authenticate({ username: 'alice', password: PASSWORD, clientIp: '192.0.2.61' })).result, 'locked');
      assert.deepEqual(waits, [1700, 1700]);
    });

    test('an attempt that already took longer than the delay is not delayed further', async (t) => {
      const { sleep: recorder, waits } = recordingSleep();
      const auth = await setup(t, { deps: { failureDelayMs: 2000, clock: steppingClock(2500), sleep: recorder, random: () => 0 } });
      assert.equal((await auth.authenticate({ username: 'alice', password: 'wrong', clientIp: '192.0.2.62' })).result, 'invalid');
      assert.deepEqual(waits, []);
    });

    test('a successful login is answered without any delay', async (t) => {
      const { sleep: recorder, waits } = recordingSleep();
      const auth = await setup(t, { deps: { failureDelayMs: 2000, clock: steppingClock(300), sleep: recorder } });
      assert.equal((await auth.authenticate({ username: 'alice', password: PASSWORD, clientIp: '192.0.2.63' })).result, 'success');
      assert.deepEqual(waits, []);
    });

    test('a negative delay is refused', async (t) => {
      await assert.rejects(setup(t, { deps: { failureDelayMs: -1 } }), RangeError);
    });
  });
});
