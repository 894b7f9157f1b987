import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { loadPolicySet } from '../../../src/policy/loader.js';
import { context, policyFrom, testDeps, testTypes } from './support.js';

describe('the order rules run in', () => {
  test('files run in name order and the rules of a file in the order they are written', async (t) => {
    const { engine, clock, decisions, cleanup } = await policyFrom({
      '20-late.yml': 'rules:\n  - { name: late, type: answer }\n',
      '10-early.yaml': 'rules:\n  - { name: early-1, type: answer }\n  - { name: early-2, type: answer }\n',
      // Code-unit order, as `ls` in the C locale: "100-" sorts before "20-".
      '100-middle.yaml': 'rules:\n  - { name: middle, type: answer }\n',
    });
    t.after(cleanup);
    await engine.evaluate(context(clock));
    assert.deepEqual(
      decisions.map((d) => d.rule),
      ['early-1', 'early-2', 'middle', 'late'],
    );
  });

  test('only the rules of the stage being evaluated run, and a rule without a stage runs at its type\'s first', async (t) => {
    const { engine, set, clock, decisions, cleanup } = await policyFrom({
      'policy.yaml': [
        'rules:',
        '  - { name: at-mail, type: answer }',
        '  - { name: at-rcpt, type: answer, stage: rcpt }',
        '  - { name: checks-data, type: data-only }',
        '',
      ].join('\n'),
    });
    t.after(cleanup);
    assert.deepEqual(
      set.rules.map((r) => [r.name, r.stage]),
      [['at-mail', 'mail'], ['at-rcpt', 'rcpt'], ['checks-data', 'data']],
    );
    await engine.evaluate(context(clock, { stage: 'rcpt', recipient: 'bob@example.net' }));
    assert.deepEqual(decisions.map((d) => d.rule), ['at-rcpt']);
  });

  test('files that are not policy files are ignored: other extensions and dot-files', async (t) => {
    const { set, cleanup } = await policyFrom({
      'policy.yaml': 'rules:\n  - { name: real, type: answer }\n',
      'README.md': 'not a policy',
      'policy.yaml.bak': 'rules: [oops',
      '.editor-swap.yaml': 'rules: [oops',
    });
    t.after(cleanup);
    assert.deepEqual(set.rules.map((r) => r.name), ['real']);
  });

  test('a missing directory and an empty file are both a valid empty policy', async (t) => {
    const { set, engine, clock, cleanup } = await policyFrom({ 'empty.yaml': '# nothing yet\n', 'no-rules.yml': 'rules: []\n' });
    t.after(cleanup);
    assert.equal(set.rules.length, 0);
    const outcome = await engine.evaluate(context(clock));
    assert.equal(outcome.verdict.action, 'continue');

    const missing = await loadPolicySet('/nonexistent/postern/policies', { builtins: testTypes, deps: testDeps() });
    assert.equal(missing.rules.length, 0);
  });
});
