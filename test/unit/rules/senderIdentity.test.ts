import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import senderIdentity from '../../../src/rules/senderIdentity.js';
import { alice, createRule, dataContext, makeContext, MessageSpool, parseParams, verdictOf } from './context.js';

const spool = new MessageSpool();
after(() => spool.remove());

const rule = (params: unknown = {}) => createRule(senderIdentity, params);
const refusal = (text: string) => ({ action: 'reject', code: 550, enhanced: '5.7.1', text });

function messageFrom(headerLines: string): ReturnType<MessageSpool['add']> {
  return spool.add(`${headerLines}\nTo: bob@example.org\nSubject: hello\n\nhi\n`);
}

describe('sender-identity at mail', () => {
  test('the user may send as an address listed in their senders', async () => {
    assert.equal((await verdictOf(rule(), makeContext())).action, 'continue');
  });

  test('another address is refused with a reason naming the user and the address', async () => {
    const verdict = await verdictOf(rule(), makeContext({ envelope: { sender: 'ceo@example.com' } }));
    assert.deepEqual(verdict, refusal('alice may not send as ceo@example.com'));
  });

  test('case does not matter in the local part or the domain', async () => {
    assert.equal((await verdictOf(rule(), makeContext({ envelope: { sender: 'Alice@EXAMPLE.Com' } }))).action, 'continue');
  });

  test('an internationalised domain matches a sender pattern written in xn-- form', async () => {
    const user = { ...alice, senders: ['*@xn--bcher-kva.example'] };
    assert.equal((await verdictOf(rule(), makeContext({ user, envelope: { sender: 'info@Bücher.example' } }))).action, 'continue');
    assert.equal((await verdictOf(rule(), makeContext({ user, envelope: { sender: 'info@xn--bcher-kva.example' } }))).action, 'continue');
    assert.equal((await verdictOf(rule(), makeContext({ user, envelope: { sender: 'info@bucher.example' } }))).action, 'reject');
  });

  test('*@*.domain admits subdomains and not the domain itself', async () => {
    const user = { ...alice, senders: ['*@*.alerts.example.com'] };
    assert.equal((await verdictOf(rule(), makeContext({ user, envelope: { sender: 'cron@eu.alerts.example.com' } }))).action, 'continue');
    assert.equal((await verdictOf(rule(), makeContext({ user, envelope: { sender: 'cron@alerts.example.com' } }))).action, 'reject');
  });

  test('the null sender <> is refused unless allowNullSender is set', async () => {
    const ctx = makeContext({ envelope: { sender: '' } });
    assert.deepEqual(await verdictOf(rule(), ctx), refusal('alice may not send with the null sender <>'));
    assert.equal((await verdictOf(rule({ allowNullSender: true }), ctx)).action, 'continue');
  });

  test('the user\'s own name is allowed as local part only on the listed domains', async () => {
    const r = rule({ allowOwnNameOnDomains: ['Corp.Example', 'bücher.example'] });
    const user = { ...alice, senders: [] };
    assert.equal((await verdictOf(r, makeContext({ user, envelope: { sender: 'ALICE@corp.example' } }))).action, 'continue');
    assert.equal((await verdictOf(r, makeContext({ user, envelope: { sender: 'alice@xn--bcher-kva.example' } }))).action, 'continue');
    assert.equal((await verdictOf(r, makeContext({ user, envelope: { sender: 'bob@corp.example' } }))).action, 'reject');
    assert.equal((await verdictOf(r, makeContext({ user, envelope: { sender: 'alice@other.example' } }))).action, 'reject');
  });

  test('without an authenticated user the answer is that authentication is required', async () => {
    assert.deepEqual(await verdictOf(rule(), makeContext({ user: undefined })), refusal('authentication required'));
  });

  test('wildcards in allowOwnNameOnDomains and unknown params are refused when the policy loads', () => {
    assert.throws(() => parseParams(senderIdentity, { allowOwnNameOnDomains: ['*.example.com'] }), /without wildcards/);
    assert.throws(() => parseParams(senderIdentity, { allowNullSenders: true }), /allowNullSenders/);
  });
});

describe('sender-identity at data', () => {
  const atData = (headerLines: string) => dataContext(messageFrom(headerLines));

  test('a From: with the user\'s address and a display name passes', async () => {
    assert.equal((await verdictOf(rule(), atData('From: "Alice Liddell" <alice@example.com>'))).action, 'continue');
  });

  test('a spoofed From: is refused naming the header and the address', async () => {
    assert.deepEqual(await verdictOf(rule(), atData('From: The CEO <ceo@example.com>')), refusal('alice may not use From: ceo@example.com'));
  });

  test('an address inside the display name is not mistaken for the address', async () => {
    assert.equal((await verdictOf(rule(), atData('From: "ceo@example.com" <alice@example.com>'))).action, 'continue');
    assert.deepEqual(await verdictOf(rule(), atData('From: "alice@example.com" <ceo@example.com>')), refusal('alice may not use From: ceo@example.com'));
  });

  test('a From: with several addresses needs every one of them allowed', async () => {
    const user = { ...alice, senders: ['alice@example.com', 'team@example.com'] };
    const both = dataContext(messageFrom('From: alice@example.com, Team <team@example.com>'), { user });
    assert.equal((await verdictOf(rule(), both)).action, 'continue');
    const oneForeign = dataContext(messageFrom('From: alice@example.com, ceo@example.com'), { user });
    assert.deepEqual(await verdictOf(rule(), oneForeign), refusal('alice may not use From: ceo@example.com'));
  });

  test('every From: field is checked when the message carries more than one', async () => {
    assert.deepEqual(await verdictOf(rule(), atData('From: alice@example.com\nFrom: ceo@example.com')), refusal('alice may not use From: ceo@example.com'));
  });

  test('a Sender: field must match too, and is not required', async () => {
    assert.deepEqual(
      await verdictOf(rule(), atData('From: alice@example.com\nSender: ceo@example.com')),
      refusal('alice may not use Sender: ceo@example.com'),
    );
    assert.equal((await verdictOf(rule(), atData('From: alice@example.com\nSender: ALICE@example.com'))).action, 'continue');
  });

  test('header addresses in upper case and with a Unicode domain match their patterns', async () => {
    const user = { ...alice, senders: ['alice@example.com', '*@xn--bcher-kva.example'] };
    const ctx = dataContext(messageFrom('From: ALICE@Example.COM, Verkauf <verkauf@BÜCHER.example>'), { user });
    assert.equal((await verdictOf(rule(), ctx)).action, 'continue');
  });

  test('a From: naming no address at all is refused', async () => {
    assert.deepEqual(await verdictOf(rule(), atData('From: undisclosed-senders:;')), refusal('alice may not use From: undisclosed-senders:;'));
  });

  test('a folded From: field is read whole', async () => {
    assert.deepEqual(
      await verdictOf(rule(), atData('From: alice@example.com,\n  "Chief Executive"\n  <ceo@example.com>')),
      refusal('alice may not use From: ceo@example.com'),
    );
  });

  test('the envelope sender is not judged at data: that is the mail stage\'s job', async () => {
    const ctx = dataContext(messageFrom('From: alice@example.com'), { envelope: { sender: 'other@example.net' } });
    assert.equal((await verdictOf(rule(), ctx)).action, 'continue');
  });

  test('control characters in a quoted header value do not reach the reply', async () => {
    const message = spool.add('To: bob@example.org\n\nhi\n');
    const ctx = dataContext({ ...message, headers: [{ name: 'From', key: 'from', value: 'x\r\n250 ok' }] });
    const verdict = await verdictOf(rule(), ctx);
    assert.equal(verdict.action, 'reject');
    assert.ok(verdict.action === 'reject' && !/[\r\n]/.test(verdict.text), 'no CR or LF in the text');
  });
});
