import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import messageSize from '../../../src/rules/messageSize.js';
import { createRule, dataContext, makeContext, MessageSpool, parseParams, verdictOf } from './context.js';

const spool = new MessageSpool();
after(() => spool.remove());

const tooBig = (max: number) => ({
  action: 'reject',
  code: 552,
  enhanced: '5.3.4',
  text: `message size exceeds the limit of ${max} bytes for this sender`,
});

describe('message-size', () => {
  test('the limit is written as a size and read as bytes', () => {
    assert.deepEqual(parseParams(messageSize, { max: '10MiB' }), { max: 10 * 1024 * 1024 });
    assert.deepEqual(parseParams(messageSize, { max: 2048 }), { max: 2048 });
  });

  test('a limit that is not a size, or no limit, is refused when the policy loads', () => {
    assert.throws(() => parseParams(messageSize, { max: 'ten megabytes' }), /not a size/);
    assert.throws(() => parseParams(messageSize, {}), /max/);
  });

  test('at mail a declared SIZE= above the limit is refused with 552 5.3.4', async () => {
    const rule = createRule(messageSize, { max: '1KiB' });
    assert.deepEqual(await verdictOf(rule, makeContext({ envelope: { declaredSize: 1025 } })), tooBig(1024));
    assert.equal((await verdictOf(rule, makeContext({ envelope: { declaredSize: 1024 } }))).action, 'continue');
  });

  test('at mail without a declared size there is nothing to judge yet', async () => {
    const rule = createRule(messageSize, { max: 1 });
    assert.equal((await verdictOf(rule, makeContext())).action, 'continue');
  });

  test('at data the size actually received counts, not the declared one', async () => {
    const message = spool.add(`From: alice@example.com\n\n${'x'.repeat(600)}\n`);
    const rule = createRule(messageSize, { max: 500 });
    assert.deepEqual(await verdictOf(rule, dataContext(message, { envelope: { declaredSize: 10 } })), tooBig(500));
    const roomy = createRule(messageSize, { max: message.size });
    assert.equal((await verdictOf(roomy, dataContext(message, { envelope: { declaredSize: 10 * message.size } }))).action, 'continue');
  });
});
