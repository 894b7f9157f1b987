import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import clientIp from '../../../src/rules/clientIp.js';
import type { Stage } from '../../../src/policy/types.js';
import { createRule, makeContext, parseParams, verdictOf } from './context.js';

const from = (params: unknown, address: string, stage: Stage = 'connect') =>
  verdictOf(createRule(clientIp, params), makeContext({ stage, client: { address, port: 50000 } }));

describe('client-ip', () => {
  test('a client in a denied IPv4 network is refused; others pass', async () => {
    assert.equal((await from({ deny: ['198.51.100.0/24'] }, '198.51.100.77')).action, 'reject');
    assert.equal((await from({ deny: ['198.51.100.0/24'] }, '198.51.101.1')).action, 'continue');
  });

  test('with an allow list only clients in it pass, and deny wins inside it', async () => {
    const params = { allow: ['10.0.0.0/8', '192.0.2.10'], deny: ['10.66.0.0/16'] };
    assert.equal((await from(params, '10.1.2.3')).action, 'continue');
    assert.equal((await from(params, '192.0.2.10')).action, 'continue');
    assert.equal((await from(params, '192.0.2.11')).action, 'reject');
    assert.equal((await from(params, '10.66.1.1')).action, 'reject');
  });

  test('IPv6 networks match IPv6 clients in any spelling', async () => {
    const params = { allow: ['2001:db8::/32'] };
    assert.equal((await from(params, '2001:DB8:0:1::5')).action, 'continue');
    assert.equal((await from(params, '2001:0db8:ffff:ffff:ffff:ffff:ffff:ffff')).action, 'continue');
    assert.equal((await from(params, '2001:db9::1')).action, 'reject');
  });

  test('an IPv4 client is never in an IPv6 network, and the other way round', async () => {
    assert.equal((await from({ deny: ['::/0'] }, '192.0.2.1')).action, 'continue');
    assert.equal((await from({ deny: ['0.0.0.0/0'] }, '2001:db8::1')).action, 'continue');
  });

  test('an IPv4-mapped IPv6 client is judged as the IPv4 address it carries', async () => {
    const verdict = await from({ deny: ['203.0.113.0/24'] }, '::ffff:203.0.113.5');
    assert.deepEqual(verdict, { action: 'reject', code: 554, enhanced: '5.7.1', text: 'connections from 203.0.113.5 are not allowed' });
  });

  test('an IPv4-mapped network in the list matches the IPv4 clients it covers', async () => {
    assert.equal((await from({ deny: ['::ffff:192.0.2.0/120'] }, '192.0.2.7')).action, 'reject');
    assert.equal((await from({ deny: ['::ffff:192.0.2.0/120'] }, '192.0.3.7')).action, 'continue');
  });

  test('the reply fits the stage: 554 at connect, a refused login at auth, refused sending at mail', async () => {
    const params = { deny: ['203.0.113.0/24'] };
    assert.deepEqual(await from(params, '203.0.113.5', 'connect'), {
      action: 'reject', code: 554, enhanced: '5.7.1', text: 'connections from 203.0.113.5 are not allowed',
    });
    assert.deepEqual(await from(params, '203.0.113.5', 'auth'), {
      action: 'reject', code: 550, enhanced: '5.7.1', text: 'logins from 203.0.113.5 are not allowed',
    });
    assert.deepEqual(await from(params, '203.0.113.5', 'mail'), {
      action: 'reject', code: 550, enhanced: '5.7.1', text: 'sending from 203.0.113.5 is not allowed',
    });
  });

  test('a client address that is not an IP address passes a deny list and fails an allow list', async () => {
    assert.equal((await from({ deny: ['0.0.0.0/0'] }, 'unix-socket')).action, 'continue');
    assert.equal((await from({ allow: ['0.0.0.0/0'] }, 'unix-socket')).action, 'reject');
  });

  test('malformed networks and a rule without lists are refused when the policy loads', () => {
    assert.throws(() => parseParams(clientIp, { deny: ['10.0.0.0/33'] }), /not an IP address or a CIDR/);
    assert.throws(() => parseParams(clientIp, { allow: ['2001:db8::/129'] }), /not an IP address or a CIDR/);
    assert.throws(() => parseParams(clientIp, { allow: ['example.com'] }), /not an IP address or a CIDR/);
    assert.throws(() => parseParams(clientIp, {}), /allow list, a deny list or both/);
    assert.throws(() => parseParams(clientIp, { deny: ['10'] }), /not an IP address or a CIDR/);
    assert.throws(() => parseParams(clientIp, { deny: ['10.1.2.3/8'] }), /host bits set after the prefix; the network is 10.0.0.0\/8/);
    assert.throws(() => parseParams(clientIp, { deny: ['2001:db8::1/32'] }), /host bits set/);
  });
});
