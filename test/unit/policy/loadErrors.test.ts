import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { loadPolicySet } from '../../../src/policy/loader.js';
import { PolicyLoadError } from '../../../src/policy/policyLoadError.js';
import { loadProblems, tempDir, testDeps, testTypes, writeFiles } from './support.js';

describe('policy files that do not load', () => {
  test('an unknown rule type is named with its file, line and key, and the known types are listed', async () => {
    const problems = await loadProblems({ '10-a.yaml': 'rules:\n  - name: r\n    type: sender-identty\n' });
    assert.deepEqual(problems, ['10-a.yaml:3: rules[0].type: unknown rule type "sender-identty"; known types: answer, data-only']);
  });

  test('an unknown stage is refused', async () => {
    const problems = await loadProblems({ 'a.yaml': 'rules:\n  - name: r\n    type: answer\n    stage: helo\n' });
    assert.deepEqual(problems, ['a.yaml:4: rules[0].stage: must be one of connect, auth, mail, rcpt, data']);
  });

  test('a stage the rule type does not run at is refused', async () => {
    const problems = await loadProblems({ 'a.yaml': 'rules:\n  - name: r\n    type: data-only\n    stage: rcpt\n' });
    assert.deepEqual(problems, ['a.yaml:4: rules[0].stage: the rule type data-only runs only at data, not at rcpt']);
  });

  test('a name used twice, even in different files, is refused where it is repeated', async () => {
    const problems = await loadProblems({
      '10-a.yaml': 'rules:\n  - { name: limits, type: answer }\n',
      '20-b.yaml': '# second file\nrules:\n  - { name: other, type: answer }\n  - { name: limits, type: answer }\n',
    });
    assert.equal(problems.length, 1);
    assert.match(problems[0]!, /^20-b\.yaml:4: rules\[1\]\.name: the name "limits" is already used at .*10-a\.yaml:2; rule names must be unique/);
  });

  test('bad params are reported at the line of the offending key, by the type\'s own schema', async () => {
    const problems = await loadProblems({
      'p.yaml': ['rules:', '  - name: r', '    type: answer', '    params:', '      action: reject', '      code: "550"', '      colour: red', ''].join('\n'),
    });
    assert.deepEqual(problems, ['p.yaml:6: rules[0].params.code: expected number', 'p.yaml:7: rules[0].params.colour: unknown key']);
  });

  test('a rule type whose params are a plain function reports what the function throws', async () => {
    const strict = {
      type: 'strict',
      stages: ['mail'] as const,
      params: (input: unknown) => {
        if ((input as { limit?: unknown }).limit === undefined) throw new Error('limit is required');
        return input;
      },
      create: () => ({ evaluate: () => ({ action: 'continue' as const }) }),
    };
    const problems = await loadProblems({ 'p.yaml': 'rules:\n  - name: r\n    type: strict\n    params: { other: 1 }\n' }, [...testTypes, strict]);
    assert.deepEqual(problems, ['p.yaml:4: rules[0].params: limit is required']);
  });

  test('unknown keys, missing fields and bad values of the rule itself are each reported', async () => {
    const problems = await loadProblems({
      'p.yaml': ['rules:', '  - type: answer', '    mode: loud', '    timeout: soon', '    onErorr: continue', ''].join('\n'),
    });
    assert.equal(problems.length, 4);
    assert.equal(problems[0], 'p.yaml:2: rules[0].name: is required');
    assert.equal(problems[1], 'p.yaml:3: rules[0].mode: must be one of enforce, monitor');
    assert.match(problems[2]!, /^p\.yaml:4: rules\[0\]\.timeout: "soon" is not a duration/);
    assert.equal(problems[3], 'p.yaml:5: rules[0].onErorr: unknown key');
  });

  test('a YAML syntax error is reported with its line', async () => {
    const problems = await loadProblems({ 'p.yaml': 'rules:\n  - name: r\n    type: [answer\n' });
    assert.ok(problems.length >= 1);
    assert.match(problems[0]!, /^p\.yaml:\d+: /);
  });

  test('one error lists every problem of every file, and nothing of the policy is used', async (t) => {
    const { dir, cleanup } = tempDir();
    t.after(cleanup);
    writeFiles(dir, {
      '10-a.yaml': 'rules:\n  - { name: good, type: answer }\n  - { name: bad, type: nope }\n',
      '20-b.yaml': 'rulez: []\n',
    });
    const error = await loadPolicySet(dir, { builtins: testTypes, deps: testDeps() }).then(
      () => assert.fail('expected a PolicyLoadError'),
      (err: unknown) => err,
    );
    assert.ok(error instanceof PolicyLoadError);
    assert.equal(error.problems.length, 2);
    assert.match(error.message, /^Invalid policy in .*:\n {2}.*10-a\.yaml:3: rules\[1\]\.type: unknown rule type "nope".*\n {2}.*20-b\.yaml:1: rulez: unknown key$/);
  });
});
