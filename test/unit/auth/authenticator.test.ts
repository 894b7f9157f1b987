import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Authenticator } from '../../../src/auth/authenticator.js';
import { LoginLockout } from '../../../src/auth/lockout.js';
import { hashPassword } from '../../../src/auth/passwordHash.js';
import { UserStore } from '../../../src/auth/userStore.js';
import { VerifiedLoginCache } from '../../../src/auth/verifiedLoginCache.js';
import { ManualClock } from '../../../src/util/clock.js';
import { silentLogger } from '../../../src/util/logger.js';
import { tempDir } from './support.js';

const PASSWORD = 'alice-has-a-long-password';

async function setup(t: { after: (fn: () => void) => void }, lockout = { failures: 3, windowMs: 1000, durationMs: 1000 }) {
  const { dir, cleanup } = tempDir();
  t.after(cleanup);
  const path = join(dir, 'users.yaml');
  writeFileSync(
    path,
    `users:\n  alice:\n    password: "${await hashPassword(PASSWORD)}"\n    senders: [alice@example.com]\n    groups: [staff]\n`,
  );
  const { store } = await UserStore.open({ path, logger: silentLogger(), watch: false });
  return new Authenticator({ users: store, lockout: new LoginLockout(lockout) });
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
    const auth = await setup(t, { failures: 10, windowMs: 1000, durationMs: 1000 });
    assert.deepEqual(await auth.authenticate({ username: 'alice', password: 'wrong', clientIp: '192.0.2.2' }), { result: 'invalid' });
    assert.deepEqual(await auth.authenticate({ username: 'mallory', password: PASSWORD, clientIp: '192.0.2.2' }), { result: 'invalid' });
    assert.deepEqual(await auth.authenticate({ username: 'Alice', password: PASSWORD, clientIp: '192.0.2.2' }), { result: 'invalid' });
  });

  test('a locked user is refused even with the right password, until the lock ends', async (t) => {
    const auth = await setup(t);
    for (const ip of ['192.0.2.3', '192.0.2.4', '192.0.2.5']) {
      assert.equal((await auth.authenticate({ username: 'alice', password: 'guess', clientIp: ip })).result, 'invalid');
    }
    const locked = await auth.authenticate({ username: 'alice', password: PASSWORD, clientIp: '198.51.100.1' });
    assert.equal(locked.result, 'locked');
    assert.ok(locked.result === 'locked' && locked.retryAfterMs > 0);

    await sleep(locked.retryAfterMs + 100);
    assert.equal((await auth.authenticate({ username: 'alice', password: PASSWORD, clientIp: '198.51.100.1' })).result, 'success');
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
    });
    const login = (password: string) => auth.authenticate({ username: 'alice', password, clientIp: '192.0.2.20' });
    assert.equal((await login(PASSWORD)).result, 'success');
    assert.equal((await login(PASSWORD)).result, 'success', 'the second login is served from the cache');
    await write('a brand new password');
    assert.equal(store.reload(), true);
    assert.equal((await login(PASSWORD)).result, 'invalid');
    assert.equal((await login('a brand new password')).result, 'success');
  });
});
