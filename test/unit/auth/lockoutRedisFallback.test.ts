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

    assert.deepEqual(await lockout.check('192.0.2.1', 'alice'), { locked: false });
    await lockout.recordFailure('192.0.2.1', 'alice');
    await lockout.recordFailure('192.0.2.1', 'alice');
    const state = await lockout.check('192.0.2.1', 'alice');
    assert.equal(state.locked, true);

    await lockout.recordSuccess('alice');
    assert.equal((await lockout.check('198.51.100.1', 'alice')).locked, false);
    assert.equal((await lockout.check('192.0.2.1', 'bob')).locked, true);
  });
});
