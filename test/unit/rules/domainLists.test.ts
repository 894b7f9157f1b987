import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import recipientDomains from '../../../src/rules/recipientDomains.js';
import senderDomains from '../../../src/rules/senderDomains.js';
import { createRule, makeContext, parseParams, verdictOf } from './context.js';

const toRecipient = (params: unknown, recipient: string) =>
  verdictOf(createRule(recipientDomains, params), makeContext({ stage: 'rcpt', recipient }));
const fromSender = (params: unknown, sender: string) => verdictOf(createRule(senderDomains, params), makeContext({ envelope: { sender } }));

describe('recipient-domains', () => {
  test('with an allow list only the listed domains pass', async () => {
    assert.equal((await toRecipient({ allow: ['example.org'] }, 'bob@example.org')).action, 'continue');
    assert.deepEqual(await toRecipient({ allow: ['example.org'] }, 'bob@example.net'), {
      action: 'reject',
      code: 550,
      enhanced: '5.7.1',
      text: 'mail to example.net is not allowed',
    });
  });

  test('*.domain covers subdomains but not the domain itself or look-alikes', async () => {
    const params = { allow: ['*.example.org'] };
    assert.equal((await toRecipient(params, 'bob@eu.example.org')).action, 'continue');
    assert.equal((await toRecipient(params, 'bob@a.b.example.org')).action, 'continue');
    assert.equal((await toRecipient(params, 'bob@example.org')).action, 'reject');
    assert.equal((await toRecipient(params, 'bob@badexample.org')).action, 'reject');
  });

  test('deny wins over allow, and * matches any domain', async () => {
    const params = { allow: ['*'], deny: ['competitor.example', '*.competitor.example'] };
    assert.equal((await toRecipient(params, 'bob@example.org')).action, 'continue');
    assert.equal((await toRecipient(params, 'ceo@competitor.example')).action, 'reject');
    assert.equal((await toRecipient(params, 'ceo@mail.competitor.example')).action, 'reject');
  });

  test('a deny list alone lets every other domain through', async () => {
    assert.equal((await toRecipient({ deny: ['example.net'] }, 'bob@example.org')).action, 'continue');
    assert.equal((await toRecipient({ deny: ['example.net'] }, 'bob@example.net')).action, 'reject');
  });

  test('domains compare ignoring case, and a trailing root dot', async () => {
    assert.equal((await toRecipient({ allow: ['Example.ORG'] }, 'Bob@EXAMPLE.org')).action, 'continue');
    assert.equal((await toRecipient({ deny: ['example.org'] }, 'bob@example.org.')).action, 'reject');
  });

  test('an internationalised domain matches whether written in Unicode or xn-- form', async () => {
    assert.equal((await toRecipient({ allow: ['bücher.example'] }, 'info@xn--bcher-kva.example')).action, 'continue');
    assert.equal((await toRecipient({ allow: ['xn--bcher-kva.example'] }, 'info@BÜCHER.example')).action, 'continue');
    assert.equal((await toRecipient({ deny: ['*.bücher.example'] }, 'info@shop.xn--bcher-kva.example')).action, 'reject');
  });

  test('a rule without lists, or with a malformed entry, is refused when the policy loads', () => {
    assert.throws(() => parseParams(recipientDomains, {}), /allow list, a deny list or both/);
    assert.throws(() => parseParams(recipientDomains, { allow: ['ex*ample.org'] }), /wildcard/);
    assert.throws(() => parseParams(recipientDomains, { deny: ['not a domain'] }), /not a domain/);
    assert.throws(() => parseParams(recipientDomains, { allow: ['a@example.org'] }), /not a domain/);
  });
});

describe('sender-domains', () => {
  test('the envelope sender\'s domain must pass the lists', async () => {
    assert.equal((await fromSender({ allow: ['example.com'] }, 'alice@example.com')).action, 'continue');
    assert.deepEqual(await fromSender({ allow: ['example.com'] }, 'alice@example.org'), {
      action: 'reject',
      code: 550,
      enhanced: '5.7.1',
      text: 'sending as example.org is not allowed',
    });
  });

  test('*.domain patterns and deny lists apply as for recipients', async () => {
    assert.equal((await fromSender({ allow: ['*.example.com'] }, 'cron@alerts.example.com')).action, 'continue');
    assert.equal((await fromSender({ allow: ['*.example.com'], deny: ['legacy.example.com'] }, 'x@LEGACY.example.com')).action, 'reject');
  });

  test('the null sender <> has no domain and is left to sender-identity', async () => {
    assert.equal((await fromSender({ allow: ['example.com'] }, '')).action, 'continue');
  });
});
