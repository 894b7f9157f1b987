import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { RULE_FAULT_REPLY } from '../../../src/policy/engine.js';
import { capturingLogger, context, policyFrom } from './support.js';

const rules = (...lines: string[]) => `rules:\n${lines.map((l) => `  - ${l}\n`).join('')}`;
const TEMPFAIL = { action: 'defer', code: 451, enhanced: '4.3.0', text: 'Temporary local problem, try again later' };

describe('a rule that fails', () => {
  test('a throwing rule answers 451 4.3.0 with onError tempfail, the default, and is reported as an error', async (t) => {
    const log = capturingLogger();
    const { engine, clock, decisions, cleanup } = await policyFrom(
      { 'p.yaml': rules('{ name: broken, type: answer, params: { action: throw } }', '{ name: after, type: answer }') },
      { logger: log.logger },
    );
    t.after(cleanup);
    const outcome = await engine.evaluate(context(clock));
    assert.deepEqual(outcome.verdict, TEMPFAIL);
    assert.deepEqual(RULE_FAULT_REPLY, TEMPFAIL);
    assert.deepEqual(decisions.map((d) => [d.rule, d.verdict]), [['broken', 'error']]);
    assert.equal(decisions[0]!.reason, 'threw: the test rule broke');
    const line = log.records().find((r) => r.rule === 'broken');
    assert.equal(line?.level, 'warn');
    assert.equal(line?.verdict, 'error');
  });

  test('a throwing rule with onError continue is skipped and the next rule decides', async (t) => {
    const { engine, clock, decisions, cleanup } = await policyFrom({
      'p.yaml': rules(
        '{ name: broken, type: answer, onError: continue, params: { action: throw } }',
        '{ name: decides, type: answer, params: { action: reject, text: decided } }',
      ),
    });
    t.after(cleanup);
    const outcome = await engine.evaluate(context(clock));
    assert.equal(outcome.verdict.action === 'reject' && outcome.verdict.text, 'decided');
    assert.deepEqual(decisions.map((d) => [d.rule, d.verdict]), [['broken', 'error'], ['decides', 'reject']]);
  });

  test('a rule that never answers times out after its timeout and is a fault', async (t) => {
    const { engine, clock, decisions, cleanup } = await policyFrom({
      'p.yaml': rules('{ name: stuck, type: answer, timeout: 50ms, params: { action: hang } }'),
    });
    t.after(cleanup);
    const outcome = await engine.evaluate(context(clock));
    assert.deepEqual(outcome.verdict, TEMPFAIL);
    assert.deepEqual(decisions.map((d) => [d.rule, d.verdict, d.reason]), [['stuck', 'error', 'did not answer within 50ms']]);
  });

  test('the stage deadline cuts a rule short when it comes before the rule\'s own timeout', async (t) => {
    const { engine, clock, decisions, cleanup } = await policyFrom({
      'p.yaml': rules('{ name: stuck, type: answer, timeout: 1h, onError: continue, params: { action: hang } }'),
    });
    t.after(cleanup);
    const outcome = await engine.evaluate(context(clock, { deadline: clock.now() + 30 }));
    assert.equal(outcome.verdict.action, 'continue');
    assert.deepEqual(decisions.map((d) => [d.rule, d.verdict, d.reason]), [['stuck', 'error', 'did not answer before the stage deadline (30ms left)']]);
  });

  test('a rule that fails after it timed out does not disturb anything later', async (t) => {
    const { engine, clock, decisions, cleanup } = await policyFrom({
      'p.yaml': rules('{ name: late, type: answer, timeout: 10ms, onError: continue, params: { action: reject-late } }'),
    });
    t.after(cleanup);
    const outcome = await engine.evaluate(context(clock));
    assert.equal(outcome.verdict.action, 'continue');
    assert.equal(decisions[0]?.verdict, 'error');
    // Outlive the rule's late rejection: an unhandled rejection would fail this test file.
    await new Promise((resolve) => setTimeout(resolve, 150));
  });

  test('a refusal whose codes disagree with its action, or whose text has a line break, is a fault', async (t) => {
    const { engine, clock, decisions, cleanup } = await policyFrom({
      'p.yaml': rules(
        '{ name: reject-4xx, type: answer, onError: continue, params: { action: reject, code: 450, enhanced: 4.7.1 } }',
        '{ name: defer-5xx, type: answer, onError: continue, params: { action: defer, code: 550, enhanced: 5.7.1 } }',
        '{ name: mixed-classes, type: answer, onError: continue, params: { action: defer, code: 450, enhanced: 5.7.1 } }',
        '{ name: not-rfc3463, type: answer, onError: continue, params: { action: reject, enhanced: "5.7" } }',
        '{ name: two-lines, type: answer, onError: continue, params: { action: reject, text: "no\\r\\n250 ok" } }',
        '{ name: fine, type: answer, params: { action: reject, code: 554, enhanced: 5.7.1, text: refused } }',
      ),
    });
    t.after(cleanup);
    const outcome = await engine.evaluate(context(clock));
    assert.deepEqual(outcome.verdict, { action: 'reject', code: 554, enhanced: '5.7.1', text: 'refused' });
    assert.deepEqual(
      decisions.map((d) => [d.rule, d.verdict]),
      [
        ['reject-4xx', 'error'],
        ['defer-5xx', 'error'],
        ['mixed-classes', 'error'],
        ['not-rfc3463', 'error'],
        ['two-lines', 'error'],
        ['fine', 'reject'],
      ],
    );
    assert.match(decisions[0]!.reason!, /^returned an invalid verdict: a reject needs a 5xx reply code, got 450$/);
    assert.match(decisions[2]!.reason!, /5\.7\.1 does not match the reply code 450/);
  });

  test('an inconsistent refusal with onError tempfail answers 451 4.3.0, not the refusal', async (t) => {
    const { engine, clock, cleanup } = await policyFrom({
      'p.yaml': rules('{ name: bad, type: answer, params: { action: reject, code: 450 } }'),
    });
    t.after(cleanup);
    assert.deepEqual((await engine.evaluate(context(clock))).verdict, TEMPFAIL);
  });

  test('a failing monitor rule is reported but changes nothing', async (t) => {
    const { engine, clock, decisions, cleanup } = await policyFrom({
      'p.yaml': rules('{ name: trial, type: answer, mode: monitor, params: { action: throw } }', '{ name: after, type: answer }'),
    });
    t.after(cleanup);
    const outcome = await engine.evaluate(context(clock));
    assert.equal(outcome.verdict.action, 'continue');
    assert.deepEqual(decisions.map((d) => [d.rule, d.verdict, d.mode]), [['trial', 'error', 'monitor'], ['after', 'continue', 'enforce']]);
  });
});
