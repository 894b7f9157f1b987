import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { Redis } from 'ioredis';
import { LoginLockout } from '../../../src/auth/lockout.js';

/** A loopback port with nothing listening: bind one, then let it go. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

describe('login lockout with an unreachable Redis', () => {
  test('lockouts keep working from memory instead of failing or letting every guess through', async (t) => {
    const redis = new Redis({ host: '127.0.0.1', port: await closedPort(), lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    redis.on('error', () => undefined); // the connection failures are the point of this test
    t.after(() => redis.disconnect());
    const lockout = new LoginLockout({ failures: 2, windowMs: 60_000, durationMs: 60_000, redis });

    // A success gives its point back, even from memory.
    assert.deepEqual(await lockout.begin('192.0.2.1', 'alice'), { locked: false });
    await lockout.succeeded('192.0.2.1', 'alice');
    for (let i = 0; i < 2; i++) {
      assert.deepEqual(await lockout.begin('192.0.2.1', 'alice'), { locked: false });
      await lockout.failed('192.0.2.1', 'alice');
    }
    const state = await lockout.begin('192.0.2.1', 'alice');
    assert.equal(state.locked, true);
    assert.ok(state.locked && state.retryAfterMs > 0);

    // The user name is locked from any address; the IP for any name.
    assert.equal((await lockout.begin('198.51.100.1', 'alice')).locked, true);
    assert.equal((await lockout.begin('192.0.2.1', 'bob')).locked, true);
    assert.equal((await lockout.begin('198.51.100.2', 'carol')).locked, false);
  });
});
