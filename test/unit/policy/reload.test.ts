import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PolicyEngine } from '../../../src/policy/engine.js';
import { loadPolicySet } from '../../../src/policy/loader.js';
import { PolicyWatcher } from '../../../src/policy/policyWatcher.js';
import { createLimiterStore } from '../../../src/policy/limiterStore.js';
import messageSize from '../../../src/rules/messageSize.js';
import { ManualClock } from '../../../src/util/clock.js';
import { silentLogger } from '../../../src/util/logger.js';
import { capturingLogger, context, tempDir, testDeps, testTypes, writeFiles } from './support.js';

const rejecting = (name: string, text: string) => `rules:\n  - { name: ${name}, type: answer, params: { action: reject, text: ${text} } }\n`;

async function setUp(t: { after: (fn: () => void) => void }, files: Record<string, string>, watch = false) {
  const { dir, cleanup } = tempDir();
  t.after(cleanup);
  writeFiles(dir, files);
  const clock = new ManualClock();
  const deps = testDeps(clock);
  const log = capturingLogger();
  const engine = new PolicyEngine({ set: await loadPolicySet(dir, { builtins: testTypes, deps }), clock, logger: log.logger });
  const results: Array<'success' | 'failure'> = [];
  let deliver: ((result: 'success' | 'failure') => void) | undefined;
  const watcher = new PolicyWatcher({
    dir,
    engine,
    builtins: testTypes,
    deps,
    logger: log.logger,
    watch,
    watchOptions: { debounceMs: 20, pollMs: 100 },
    onReload: (result) => {
      results.push(result);
      deliver?.(result);
    },
  });
  t.after(() => watcher.close());
  // The watcher's own timers do not hold the process open; this one does, and fails a test
  // whose reload never comes instead of letting it hang.
  const nextReload = () =>
    new Promise<'success' | 'failure'>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no reload within 10s')), 10_000);
      deliver = (result) => {
        clearTimeout(timer);
        resolve(result);
      };
    });
  const answer = async () => {
    const verdict = (await engine.evaluate(context(clock))).verdict;
    return verdict.action === 'continue' ? 'continue' : verdict.text;
  };
  return { dir, engine, watcher, log, results, nextReload, answer };
}

describe('reloading the policy', () => {
  test('a reload with a bad file keeps the old policy running and says why', async (t) => {
    const { dir, watcher, log, results, answer } = await setUp(t, { 'p.yaml': rejecting('old-rule', 'old-policy') });
    writeFileSync(join(dir, 'p.yaml'), 'rules:\n  - { name: new-rule, type: no-such-type }\n');
    assert.equal(await watcher.reload(), false);
    assert.deepEqual(results, ['failure']);
    assert.equal(await answer(), 'old-policy');
    const problem = log.records().find((r) => typeof r.problem === 'string');
    assert.match(String(problem?.problem), /p\.yaml:2: rules\[0\]\.type: unknown rule type "no-such-type"/);
    assert.equal(problem?.level, 'error');
  });

  test('a reload after the fix takes the new policy', async (t) => {
    const { dir, watcher, log, results, answer } = await setUp(t, { 'p.yaml': rejecting('old-rule', 'old-policy') });
    writeFileSync(join(dir, 'p.yaml'), 'rules: [oops\n');
    assert.equal(await watcher.reload(), false);
    writeFiles(dir, { 'p.yaml': rejecting('new-rule', 'new-policy'), '20-more.yaml': 'rules:\n  - { name: second, type: answer }\n' });
    assert.equal(await watcher.reload(), true);
    assert.deepEqual(results, ['failure', 'success']);
    assert.equal(await answer(), 'new-policy');
    const reloaded = log.records().find((r) => r.msg === 'policy reloaded');
    assert.equal(reloaded?.rules, 2);
  });

  test('an edited custom module is imported afresh on reload', async (t) => {
    const module = (text: string) =>
      `export default { type: 'says', stages: ['mail'], params: (p) => p, create: () => ({ evaluate: () => ({ action: 'reject', code: 550, enhanced: '5.7.1', text: '${text}' }) }) };\n`;
    const { dir, watcher, answer } = await setUp(t, { 'says.mjs': module('first version'), 'p.yaml': 'rules:\n  - { name: r, type: says }\n' });
    assert.equal(await answer(), 'first version');
    writeFileSync(join(dir, 'says.mjs'), module('second version'));
    assert.equal(await watcher.reload(), true);
    assert.equal(await answer(), 'second version');
  });

  test('reloads asked for while one runs are folded into one that reads the latest files', async (t) => {
    const { dir, watcher, results, answer } = await setUp(t, { 'p.yaml': rejecting('r', 'v1') });
    const first = watcher.reload();
    writeFileSync(join(dir, 'p.yaml'), rejecting('r', 'v2'));
    const second = watcher.reload();
    const third = watcher.reload();
    assert.equal(second, third);
    assert.deepEqual(await Promise.all([first, second, third]), [true, true, true]);
    assert.deepEqual(results, ['success', 'success']);
    assert.equal(await answer(), 'v2');
  });

  test('the watcher reloads by itself when a policy file is added to the directory', async (t) => {
    const { dir, nextReload, answer } = await setUp(t, { '10-a.yaml': 'rules:\n  - { name: a, type: answer }\n' }, true);
    assert.equal(await answer(), 'continue');
    const reloaded = nextReload();
    writeFileSync(join(dir, '20-b.yaml'), rejecting('b', 'added-later'));
    assert.equal(await reloaded, 'success');
    assert.equal(await answer(), 'added-later');
  });
});

describe('a policy directory that disappears', () => {
  test('is refused on reload and the running rules stay', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'postern-vanish-'));
    await writeFile(join(dir, '10.yaml'), 'rules:\n  - name: small\n    type: message-size\n    params: { max: 1KiB }\n');
    const limiter = createLimiterStore({ store: 'memory' });
    const deps = { clock: new ManualClock(), logger: silentLogger(), resolver: async () => [], limiter };
    const builtins = [messageSize];
    const engine = new PolicyEngine({ set: await loadPolicySet(dir, { builtins, deps }), clock: deps.clock, logger: silentLogger() });
    const results: string[] = [];
    const watcher = new PolicyWatcher({ dir, engine, builtins, deps, logger: silentLogger(), watch: false, onReload: (r) => results.push(r) });
    await rm(dir, { recursive: true, force: true });
    assert.equal(await watcher.reload(), false);
    assert.deepEqual(results, ['failure']);
    assert.equal(engine.current.rules.length, 1);
    watcher.close();
    await limiter.close();
  });
});
