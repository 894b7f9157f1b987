import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { context, rule } from './rateLimitSupport.js';

const hourly = (max: number) => [{ max, per: '1h' }];
const envelope = (sender: string, recipients: string[] = []) => ({ sender, recipients });

describe('rate-limit keys', () => {
  test('by default each user is counted alone', async () => {
    const limit = rule({ limits: hourly(1) });
    assert.equal((await limit.evaluate(context('data'))).action, 'continue');
    assert.equal((await limit.evaluate(context('data'))).action, 'defer');
    const bob = context('data', { user: { name: 'bob', senders: [], groups: [] } });
    assert.equal((await limit.evaluate(bob)).action, 'continue');
  });

  test('keyed by user and client IP, the same user from another address has its own count', async () => {
    const limit = rule({ key: ['user', 'client-ip'], limits: hourly(1) });
    assert.equal((await limit.evaluate(context('data'))).action, 'continue');
    assert.equal((await limit.evaluate(context('data', { client: { address: '2001:db8::1', port: 1 } }))).action, 'continue');
    assert.equal((await limit.evaluate(context('data', { user: { name: 'bob', senders: [], groups: [] } }))).action, 'continue');
    assert.equal((await limit.evaluate(context('data'))).action, 'defer');
  });

  test('an IPv4 client counts the same whether it arrives as a.b.c.d or as ::ffff:a.b.c.d', async () => {
    const limit = rule({ key: ['client-ip'], limits: hourly(1) });
    assert.equal((await limit.evaluate(context('data', { client: { address: '::ffff:192.0.2.7', port: 1 } }))).action, 'continue');
    assert.equal((await limit.evaluate(context('data', { client: { address: '192.0.2.7', port: 1 } }))).action, 'defer');
  });

  test('sender domains are counted case-insensitively and IDNs the same in Unicode and xn-- form', async () => {
    const limit = rule({ key: ['sender-domain'], limits: hourly(2) });
    assert.equal((await limit.evaluate(context('data', { envelope: envelope('a@Bücher.example') }))).action, 'continue');
    assert.equal((await limit.evaluate(context('data', { envelope: envelope('B@xn--bcher-kva.EXAMPLE') }))).action, 'continue');
    assert.equal((await limit.evaluate(context('data', { envelope: envelope('c@bücher.example') }))).action, 'defer');
    assert.equal((await limit.evaluate(context('data', { envelope: envelope('c@example.com') }))).action, 'continue');
  });

  test('messages from the null sender are counted together under a sender domain key', async () => {
    const limit = rule({ key: ['sender-domain'], limits: hourly(1) });
    assert.equal((await limit.evaluate(context('mail', { envelope: envelope('') }))).action, 'continue');
    assert.equal((await limit.evaluate(context('mail', { envelope: envelope('') }))).action, 'defer');
  });

  test('without an authenticated user a user-keyed limit has nothing to count and continues', async () => {
    const limit = rule({ limits: hourly(1) });
    for (let i = 0; i < 3; i++) assert.equal((await limit.evaluate(context('data', { user: undefined }))).action, 'continue');
  });

  test('at rcpt keyed by recipient domain, each recipient counts under its own domain', async () => {
    const limit = rule({ count: 'recipients', key: ['user', 'recipient-domain'], limits: hourly(2) }, { stage: 'rcpt' });
    const rcpt = (recipient: string, recipients: string[] = []) => context('rcpt', { recipient, envelope: envelope('alice@example.com', recipients) });
    assert.equal((await limit.evaluate(rcpt('a@example.net'))).action, 'continue');
    assert.equal((await limit.evaluate(rcpt('b@EXAMPLE.net', ['a@example.net']))).action, 'continue');
    assert.equal((await limit.evaluate(rcpt('x@example.org', ['a@example.net', 'b@example.net']))).action, 'continue');
    assert.equal((await limit.evaluate(rcpt('c@example.net', ['a@example.net', 'b@example.net', 'x@example.org']))).action, 'defer');
    assert.equal((await limit.evaluate(rcpt('y@example.org'))).action, 'continue');
  });

  test('counting messages at rcpt by recipient domain counts a message once per domain, at its first recipient there', async () => {
    const limit = rule({ key: ['recipient-domain'], limits: hourly(1) }, { stage: 'rcpt' });
    const rcpt = (recipient: string, recipients: string[] = []) => context('rcpt', { recipient, envelope: envelope('alice@example.com', recipients) });
    // One message with three recipients at example.net: counted once.
    assert.equal((await limit.evaluate(rcpt('a@example.net'))).action, 'continue');
    assert.equal((await limit.evaluate(rcpt('b@example.net', ['a@example.net']))).action, 'continue');
    assert.equal((await limit.evaluate(rcpt('c@example.net', ['a@example.net', 'b@example.net']))).action, 'continue');
    // The next message to example.net is the second one there.
    assert.equal((await limit.evaluate(rcpt('a@example.net'))).action, 'defer');
  });

  test('at data keyed by recipient domain, a domain past its limit defers the message and others are counted on their own', async () => {
    const limit = rule({ count: 'recipients', key: ['recipient-domain'], limits: hourly(2) });
    const data = (recipients: string[]) => context('data', { envelope: envelope('alice@example.com', recipients) });
    assert.equal((await limit.evaluate(data(['a@example.net', 'b@example.net', 'x@example.org']))).action, 'continue');
    assert.equal((await limit.evaluate(data(['y@example.org']))).action, 'continue');
    assert.equal((await limit.evaluate(data(['c@example.net', 'z@example.com']))).action, 'defer');
    assert.equal((await limit.evaluate(data(['z@example.com']))).action, 'continue');
  });
});
