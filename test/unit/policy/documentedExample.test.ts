import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, test } from 'node:test';
import { PolicyEngine } from '../../../src/policy/engine.js';
import { loadPolicySet } from '../../../src/policy/loader.js';
import { createLimiterStore } from '../../../src/policy/limiterStore.js';
import type { PolicyContext } from '../../../src/policy/types.js';
import { ManualClock } from '../../../src/util/clock.js';
import { silentLogger } from '../../../src/util/logger.js';

const README = resolve(import.meta.dirname, '../../../policies/README.md');

/** The fenced blocks of policies/README.md after the "Your own rule types" heading, by language. */
async function documentedExample(): Promise<{ module: string; policy: string }> {
  const text = (await readFile(README, 'utf8')).split('## Your own rule types')[1]!;
  const blocks = [...text.matchAll(/```(\w+)\n([\s\S]*?)```/g)];
  const module = blocks.find((b) => b[1] === 'js')?.[2];
  const policy = blocks.find((b) => b[1] === 'yaml')?.[2];
  assert.ok(module && policy, 'the README shows a module and a policy file');
  return { module, policy };
}

describe('the custom rule type documented in policies/README.md', () => {
  test('loads as written and defers bulk mail outside office hours', async () => {
    const { module, policy } = await documentedExample();
    const dir = await mkdtemp(join(tmpdir(), 'postern-doc-'));
    try {
      await writeFile(join(dir, 'business-hours.mjs'), module);
      await writeFile(join(dir, '10-hours.yaml'), policy);
      const clock = new ManualClock(Date.UTC(2026, 10, 30, 22, 0, 0)); // 22:00 UTC
      const limiter = createLimiterStore({ store: 'memory' });
      const deps = { clock, logger: silentLogger(), resolver: async () => [], limiter };
      const set = await loadPolicySet(dir, { builtins: [], deps });
      const engine = new PolicyEngine({ set, clock, logger: silentLogger() });
      const ctx = (recipients: number): PolicyContext => ({
        stage: 'data',
        sessionId: 's1',
        client: { address: '192.0.2.1', port: 1 },
        listener: 'submission',
        envelope: { sender: 'a@example.com', recipients: Array.from({ length: recipients }, (_, i) => `r${i}@example.net`) },
        deadline: clock.now() + 5000,
      });
      const bulk = await engine.evaluate(ctx(60));
      assert.deepEqual(bulk.verdict, { action: 'defer', code: 450, enhanced: '4.7.1', text: 'bulk mail is sent between 7:00 and 19:00 UTC' });
      assert.equal((await engine.evaluate(ctx(2))).verdict.action, 'continue');
      clock.advance(12 * 3_600_000); // 10:00 UTC
      assert.equal((await engine.evaluate(ctx(60))).verdict.action, 'continue');
      await limiter.close();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
