import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import maxRecipients from '../../../src/rules/maxRecipients.js';
import { createRule, makeContext, parseParams, verdictOf } from './context.js';

const recipients = (count: number) => Array.from({ length: count }, (_, i) => `r${i}@example.org`);

describe('max-recipients', () => {
  const rule = createRule(maxRecipients, { max: 2 });

  test('at rcpt recipients up to the limit are accepted', async () => {
    const ctx = makeContext({ stage: 'rcpt', recipient: 'b@example.org', envelope: { recipients: recipients(1) } });
    assert.equal((await verdictOf(rule, ctx)).action, 'continue');
  });

  test('at rcpt the recipient past the limit is deferred with 452 4.5.3 so the client sends it later', async () => {
    const ctx = makeContext({ stage: 'rcpt', recipient: 'c@example.org', envelope: { recipients: recipients(2) } });
    assert.deepEqual(await verdictOf(rule, ctx), {
      action: 'defer',
      code: 452,
      enhanced: '4.5.3',
      text: 'too many recipients: at most 2 per message',
    });
  });

  test('at data an envelope over the limit is refused with 550 5.5.3', async () => {
    assert.deepEqual(await verdictOf(rule, makeContext({ stage: 'data', envelope: { recipients: recipients(3) } })), {
      action: 'reject',
      code: 550,
      enhanced: '5.5.3',
      text: 'too many recipients: at most 2 per message',
    });
    assert.equal((await verdictOf(rule, makeContext({ stage: 'data', envelope: { recipients: recipients(2) } }))).action, 'continue');
  });

  test('a limit that is not a positive whole number is refused when the policy loads', () => {
    for (const max of [0, -1, 2.5, '10']) assert.throws(() => parseParams(maxRecipients, { max }), /max: /, String(max));
  });
});
