import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { createLimiterStore } from '../../../src/policy/limiterStore.js';
import { context, message, rule } from './rateLimitSupport.js';

// The memory store reads the system clock (rate-limiter-flexible), so a window that must end
// is 1 s long and the test waits for it.

describe('rate-limit windows', () => {
  test('messages are allowed up to the limit and the next one is deferred with 450 4.7.1', async () => {
    const limit = rule({ limits: [{ max: 2, per: '1h' }] });
    assert.equal((await limit.evaluate(context('data'))).action, 'continue');
    assert.equal((await limit.evaluate(context('data'))).action, 'continue');
    const verdict = await limit.evaluate(context('data'));
    assert.equal(verdict.action, 'defer');
    assert.ok(verdict.action === 'defer' && verdict.code === 450 && verdict.enhanced === '4.7.1', JSON.stringify(verdict));
  });

  test('the shorter of several windows refuses first, and the longer one refuses once it is full', async () => {
    const limit = rule({ limits: [{ max: 2, per: '1s' }, { max: 3, per: '1h' }] });
    const actions = async (n: number) => {
      const out: string[] = [];
      for (let i = 0; i < n; i++) out.push((await limit.evaluate(context('data'))).action);
      return out;
    };
    assert.deepEqual(await actions(3), ['continue', 'continue', 'defer']);
    await sleep(1100);
    // The refused attempt counted in the hourly window too (every attempt counts everywhere),
    // so the hourly limit of 3 is already reached.
    assert.deepEqual(await actions(1), ['defer']);
  });

  test('the per-second window allows again once it has ended while the longer one still has room', async () => {
    const limit = rule({ limits: [{ max: 1, per: '1s' }, { max: 100, per: '1d' }] });
    assert.equal((await limit.evaluate(context('data'))).action, 'continue');
    assert.equal((await limit.evaluate(context('data'))).action, 'defer');
    await sleep(1100);
    assert.equal((await limit.evaluate(context('data'))).action, 'continue');
  });

  test('two rules counting the same key on one store keep their own counts', async () => {
    const limiter = createLimiterStore({ store: 'memory' });
    const hourly = rule({ limits: [{ max: 1, per: '1h' }] }, { name: 'hourly', limiter });
    const other = rule({ limits: [{ max: 1, per: '1h' }] }, { name: 'other', limiter });
    assert.equal((await hourly.evaluate(context('data'))).action, 'continue');
    assert.equal((await other.evaluate(context('data'))).action, 'continue');
    assert.equal((await hourly.evaluate(context('data'))).action, 'defer');
  });

  test('recipients are counted one per recipient at data, so one large message can use up the limit', async () => {
    const limit = rule({ count: 'recipients', limits: [{ max: 3, per: '1h' }] });
    const recipients = ['a@example.net', 'b@example.net', 'c@example.net'];
    assert.equal((await limit.evaluate(context('data', { envelope: { sender: 'alice@example.com', recipients } }))).action, 'continue');
    const next = context('data', { envelope: { sender: 'alice@example.com', recipients: ['d@example.net'] } });
    assert.equal((await limit.evaluate(next)).action, 'defer');
  });

  test('bytes are counted as the message size at data', async () => {
    const limit = rule({ count: 'bytes', limits: [{ max: 1000, per: '1h' }] });
    assert.equal((await limit.evaluate(context('data', { message: message(600) }))).action, 'continue');
    assert.equal((await limit.evaluate(context('data', { message: message(400) }))).action, 'continue');
    assert.equal((await limit.evaluate(context('data', { message: message(1) }))).action, 'defer');
  });
});
