import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { Readiness } from '../../../src/http/readiness.js';
import { silentLogger } from '../../../src/util/logger.js';

describe('Readiness', () => {
  test('is ready only once started, while every dependency is up, and never again once draining', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'postern-ready-'));
    let redisUp = true;
    const readiness = new Readiness({ spoolTmpDir: dir, logger: silentLogger(), dependencies: [{ name: 'redis', up: () => redisUp }] });
    try {
      await readiness.start();
      assert.equal(readiness.ready, false, 'not before markStarted');
      readiness.markStarted();
      assert.equal(readiness.ready, true);
      redisUp = false;
      assert.equal(readiness.ready, false, 'not while Redis is unreachable');
      redisUp = true;
      assert.equal(readiness.ready, true);
      readiness.markDraining();
      assert.equal(readiness.ready, false);
    } finally {
      readiness.stop();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
