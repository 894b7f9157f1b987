import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { builtinRuleTypes, ruleTypeProblems } from '../../../src/policy/registry.js';
import type { RuleType } from '../../../src/policy/types.js';
import { answerType, dataOnlyType } from './support.js';

const named = (type: string): RuleType => ({ ...(dataOnlyType as RuleType), type });

describe('the built-in rule types', () => {
  test('are returned by their names', () => {
    const types = builtinRuleTypes([answerType as RuleType, dataOnlyType as RuleType]);
    assert.deepEqual([...types.keys()], ['answer', 'data-only']);
    assert.equal(types.get('answer'), answerType);
  });

  test('must have kebab-case names', () => {
    for (const bad of ['Sender', 'sender_identity', 'sender--identity', '-x', '']) {
      assert.throws(() => builtinRuleTypes([named(bad)]), TypeError, bad);
    }
    assert.doesNotThrow(() => builtinRuleTypes([named('rate-limit'), named('spf2')]));
  });

  test('may not share a name', () => {
    assert.throws(() => builtinRuleTypes([named('max-recipients'), named('max-recipients')]), /listed twice/);
  });
});

describe('what a rule type must look like', () => {
  test('a well-formed type has no problems, with a zod schema or a function for its params', () => {
    assert.deepEqual(ruleTypeProblems(answerType), []);
    assert.deepEqual(ruleTypeProblems({ ...named('x'), params: (p: unknown) => p }), []);
  });

  test('an empty stage list, a repeated stage and a non-string description are problems', () => {
    assert.deepEqual(ruleTypeProblems({ ...named('x'), stages: [] }), ['stages must be a non-empty list of connect, auth, mail, rcpt, data']);
    assert.deepEqual(ruleTypeProblems({ ...named('x'), stages: ['mail', 'mail'] }), ['stages lists a stage twice']);
    assert.deepEqual(ruleTypeProblems({ ...named('x'), description: 3 }), ['description must be a string']);
    assert.deepEqual(ruleTypeProblems(null), ['must be an object with type, stages, params and create']);
  });
});
