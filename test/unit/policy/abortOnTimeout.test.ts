import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { PolicyEngine } from '../../../src/policy/engine.js';
import { createLimiterStore } from '../../../src/policy/limiterStore.js';
import { loadPolicySet } from '../../../src/policy/loader.js';
import type { PolicyContext, RuleType } from '../../../src/policy/types.js';
import { systemClock } from '../../../src/util/clock.js';
import { silentLogger } from '../../../src/util/logger.js';

describe('a rule that passes its timeout', () => {
  test('is told through ctx.signal, so the work it still does can stop', async () => {
    let aborted: unknown;
    const slow: RuleType = {
      type: 'slow',
      stages: ['mail'],
      params: (raw: unknown) => raw ?? {},
      create() {
        return {
          evaluate: (ctx) =>
            new Promise((resolve) => {
              ctx.signal?.addEventListener('abort', () => {
                aborted = ctx.signal?.reason;
                resolve({ action: 'continue' });
              });
            }),
        };
      },
    };
    const dir = await mkdtemp(join(tmpdir(), 'postern-abort-'));
    const limiter = createLimiterStore({ store: 'memory' });
    try {
      await writeFile(join(dir, '10.yaml'), 'rules:\n  - name: slow-one\n    type: slow\n    timeout: 50ms\n');
      const deps = { clock: systemClock, logger: silentLogger(), resolver: async () => [], limiter };
      const engine = new PolicyEngine({ set: await loadPolicySet(dir, { builtins: [slow], deps }), clock: systemClock, logger: silentLogger() });
      const ctx: PolicyContext = {
        stage: 'mail',
        sessionId: 's',
        client: { address: '192.0.2.1', port: 1 },
        listener: 'submission',
        envelope: { sender: 'a@example.com', recipients: [] },
        deadline: Date.now() + 5000,
      };
      const outcome = await engine.evaluate(ctx);
      assert.equal(outcome.verdict.action, 'defer', 'a timed-out rule is a fault (451)');
      await new Promise((r) => setTimeout(r, 20));
      assert.match(String(aborted), /timed out/);
    } finally {
      await limiter.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
