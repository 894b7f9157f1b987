import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { PolicyEngine } from '../../../src/policy/engine.js';
import { createPolicySet } from '../../../src/policy/policySet.js';
import type { Verdict } from '../../../src/policy/types.js';
import { ManualClock } from '../../../src/util/clock.js';
import { silentLogger } from '../../../src/util/logger.js';
import { capturingLogger, context, policyFrom } from './support.js';

const rules = (...lines: string[]) => `rules:\n${lines.map((l) => `  - ${l}\n`).join('')}`;

describe('verdicts', () => {
  test('the first verdict other than continue wins and the rules after it do not run', async (t) => {
    const { engine, clock, decisions, cleanup } = await policyFrom({
      'p.yaml': rules(
        '{ name: fine, type: answer }',
        '{ name: refuses, type: answer, params: { action: reject, text: alice may not send as ceo@example.com } }',
        '{ name: defers, type: answer, params: { action: defer } }',
      ),
    });
    t.after(cleanup);
    const outcome = await engine.evaluate(context(clock));
    assert.deepEqual(outcome.verdict, { action: 'reject', code: 550, enhanced: '5.7.1', text: 'alice may not send as ceo@example.com' });
    assert.deepEqual(
      decisions.map((d) => [d.rule, d.verdict, d.mode]),
      [
        ['fine', 'continue', 'enforce'],
        ['refuses', 'reject', 'enforce'],
      ],
    );
    assert.equal(decisions[1]!.reason, 'alice may not send as ceo@example.com');
    assert.equal(decisions[1]!.code, 550);
    assert.deepEqual(outcome.decisions, decisions);
  });

  test('a defer wins the same way and keeps its own codes', async (t) => {
    const { engine, clock, cleanup } = await policyFrom({
      'p.yaml': rules('{ name: slow-down, type: answer, params: { action: defer, code: 452, enhanced: 4.5.3, text: too many } }'),
    });
    t.after(cleanup);
    const outcome = await engine.evaluate(context(clock));
    assert.deepEqual(outcome.verdict, { action: 'defer', code: 452, enhanced: '4.5.3', text: 'too many' });
  });

  test('a monitor rule is reported but neither stops evaluation nor changes the outcome', async (t) => {
    const log = capturingLogger();
    const { engine, clock, decisions, cleanup } = await policyFrom(
      {
        'p.yaml': rules(
          '{ name: would-reject, type: answer, mode: monitor, params: { action: reject, text: would refuse, tag: watched } }',
          '{ name: after, type: answer }',
        ),
      },
      { logger: log.logger },
    );
    t.after(cleanup);
    const outcome = await engine.evaluate(context(clock));
    assert.equal(outcome.verdict.action, 'continue');
    assert.deepEqual(
      decisions.map((d) => [d.rule, d.verdict, d.mode]),
      [
        ['would-reject', 'reject', 'monitor'],
        ['after', 'continue', 'enforce'],
      ],
    );
    // What a monitor rule would add is not added either.
    assert.deepEqual(outcome.annotations.tags, []);
    const line = log.records().find((r) => r.rule === 'would-reject');
    assert.equal(line?.level, 'info');
    assert.equal(line?.mode, 'monitor');
    assert.equal(line?.reason, 'would refuse');
  });

  test('headers and tags of every enforced rule that ran are collected, the refusing one included', async (t) => {
    const { engine, clock, cleanup } = await policyFrom({
      'p.yaml': rules(
        '{ name: one, type: answer, stage: data, params: { tag: bulk, header: first } }',
        '{ name: two, type: answer, stage: data, params: { tag: bulk, header: second } }',
        '{ name: three, type: answer, stage: data, params: { action: reject, tag: refused } }',
        '{ name: never, type: answer, stage: data, params: { tag: not-reached } }',
      ),
    });
    t.after(cleanup);
    const outcome = await engine.evaluate(context(clock, { stage: 'data', queueId: 'Q1' }));
    assert.deepEqual(outcome.annotations, {
      headers: [
        { name: 'X-Test', value: 'first' },
        { name: 'X-Test', value: 'second' },
      ],
      tags: ['bulk', 'refused'],
    });
  });

  test('every decision is logged with the session, the queue id, the rule, its verdict and reason', async (t) => {
    const log = capturingLogger();
    const { engine, clock, cleanup } = await policyFrom(
      { 'p.yaml': rules('{ name: quiet, type: answer, stage: data }', '{ name: loud, type: answer, stage: data, params: { action: reject, text: no } }') },
      { logger: log.logger },
    );
    t.after(cleanup);
    await engine.evaluate(context(clock, { stage: 'data', queueId: 'Q42' }));
    const lines = log.records().filter((r) => r.rule !== undefined);
    assert.deepEqual(
      lines.map((r) => [r.level, r.sessionId, r.queueId, r.rule, r.verdict, r.reason]),
      [
        ['debug', 'sess-1', 'Q42', 'quiet', 'continue', undefined],
        ['info', 'sess-1', 'Q42', 'loud', 'reject', 'no'],
      ],
    );
  });

  test('an evaluation already running finishes on the policy it started with when a new one is swapped in', async () => {
    let release: (v: Verdict) => void = () => undefined;
    const waiting = new Promise<Verdict>((resolve) => (release = resolve));
    const clock = new ManualClock();
    const base = { type: 'test', stage: 'mail' as const, mode: 'enforce' as const, onError: 'tempfail' as const, timeoutMs: 5000, applies: () => true, source: { file: 'x' } };
    const oldSet = createPolicySet([{ ...base, name: 'old', rule: { evaluate: () => waiting } }], new Map());
    const newSet = createPolicySet([{ ...base, name: 'new', rule: { evaluate: () => ({ action: 'reject', code: 550, enhanced: '5.7.1', text: 'new policy' }) as Verdict } }], new Map());
    const engine = new PolicyEngine({ set: oldSet, clock, logger: silentLogger() });

    const running = engine.evaluate(context(clock));
    engine.swap(newSet);
    release({ action: 'continue' });
    const first = await running;
    assert.deepEqual(first.decisions.map((d) => d.rule), ['old']);
    assert.equal(first.verdict.action, 'continue');

    const second = await engine.evaluate(context(clock));
    assert.deepEqual(second.decisions.map((d) => d.rule), ['new']);
    assert.equal(engine.current, newSet);
  });

  test('a decision hook that throws does not disturb the evaluation', async () => {
    const clock = new ManualClock();
    const set = createPolicySet(
      [{ name: 'r', type: 'test', stage: 'mail', mode: 'enforce', onError: 'tempfail', timeoutMs: 5000, applies: () => true, source: { file: 'x' }, rule: { evaluate: () => ({ action: 'continue' }) } }],
      new Map(),
    );
    const engine = new PolicyEngine({
      set,
      clock,
      logger: silentLogger(),
      onDecision: () => {
        throw new Error('metrics broke');
      },
    });
    const outcome = await engine.evaluate(context(clock));
    assert.equal(outcome.verdict.action, 'continue');
    assert.equal(outcome.decisions.length, 1);
  });
});
