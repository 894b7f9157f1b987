import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import rateLimit, { rateLimitParams } from '../../../src/rules/rateLimit.js';
import { context, params, rule } from './rateLimitSupport.js';

/** The messages of the issues a params object is refused with, as "path: message". */
function problems(input: unknown): string[] {
  const parsed = rateLimitParams.safeParse(input);
  return parsed.success ? [] : parsed.error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`);
}

describe('rate-limit params', () => {
  test('count messages per user by default, at the data stage', () => {
    assert.equal(rateLimit.type, 'rate-limit');
    assert.equal(rateLimit.stages[0], 'data');
    assert.deepEqual([...rateLimit.stages].sort(), ['data', 'mail', 'rcpt']);
    assert.deepEqual(params({ limits: [{ max: 100, per: '1m' }, { max: 2000, per: '1d' }] }), {
      count: 'messages',
      key: ['user'],
      limits: [
        { max: 100, per: '1m', windowMs: 60_000 },
        { max: 2000, per: '1d', windowMs: 86_400_000 },
      ],
    });
  });

  test('a rule needs at least one limit', () => {
    assert.equal(problems({}).length, 1);
    assert.match(problems({ limits: [] })[0]!, /^limits:/);
  });

  test('windows are whole seconds from 1s to 24d, written with a unit', () => {
    assert.match(problems({ limits: [{ max: 1, per: '500ms' }] })[0]!, /^limits\.0\.per: "500ms" must be a whole number of seconds/);
    assert.match(problems({ limits: [{ max: 1, per: '1.5s' }] })[0]!, /^limits\.0\.per:/);
    assert.match(problems({ limits: [{ max: 1, per: '30d' }] })[0]!, /^limits\.0\.per:/);
    assert.match(problems({ limits: [{ max: 1, per: 'hourly' }] })[0]!, /^limits\.0\.per: "hourly" is not a duration/);
    assert.deepEqual(problems({ limits: [{ max: 1, per: '1h30m' }] }), []);
  });

  test('limits are positive whole numbers, each over its own window', () => {
    assert.match(problems({ limits: [{ max: 0, per: '1h' }] })[0]!, /^limits\.0\.max:/);
    assert.match(problems({ limits: [{ max: 1.5, per: '1h' }] })[0]!, /^limits\.0\.max:/);
    assert.match(problems({ limits: [{ max: 1, per: '1h' }, { max: 2, per: '60m' }] })[0]!, /same window/);
  });

  test('keys are known parts, each named once, and unknown fields are refused', () => {
    assert.match(problems({ key: ['ip'], limits: [{ max: 1, per: '1h' }] })[0]!, /^key\.0:/);
    assert.match(problems({ key: ['user', 'user'], limits: [{ max: 1, per: '1h' }] })[0]!, /twice/);
    assert.match(problems({ key: [], limits: [{ max: 1, per: '1h' }] })[0]!, /^key:/);
    assert.equal(problems({ count: 'messages', limits: [{ max: 1, per: '1h' }], window: '1h' }).length, 1);
    assert.match(problems({ count: 'connections', limits: [{ max: 1, per: '1h' }] })[0]!, /^count:/);
  });

  test('a rule is refused at load at a stage where what it counts is not known yet', () => {
    const limits = [{ max: 1, per: '1h' }];
    assert.throws(() => rule({ count: 'bytes', limits }, { name: 'big', stage: 'rcpt' }), /Rate limit 'big': counts bytes, which are known only at the data stage/);
    assert.throws(() => rule({ count: 'bytes', limits }, { stage: 'mail' }), /known only at the data stage/);
    assert.throws(() => rule({ count: 'recipients', limits }, { stage: 'mail' }), /known only at the rcpt or data stage/);
    assert.throws(() => rule({ key: ['recipient-domain'], limits }, { stage: 'mail' }), /recipient domain/);
    assert.doesNotThrow(() => rule({ key: ['user', 'sender-domain'], limits }, { stage: 'mail' }));
    assert.doesNotThrow(() => rule({ count: 'recipients', key: ['recipient-domain'], limits }, { stage: 'rcpt' }));
    assert.doesNotThrow(() => rule({ count: 'bytes', key: ['recipient-domain'], limits }, { stage: 'data' }));
  });

  test('run at such a stage without having been told its stage, the rule fails rather than counting nothing', async () => {
    const limit = rule({ count: 'bytes', limits: [{ max: 1, per: '1h' }] });
    await assert.rejects(async () => limit.evaluate(context('rcpt', { recipient: 'b@example.net' })), /known only at the data stage/);
  });
});
