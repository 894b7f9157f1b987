import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { whenSchema } from '../../../src/policy/policyFile.js';
import { compileCondition } from '../../../src/policy/ruleCondition.js';
import type { PolicyContext } from '../../../src/policy/types.js';
import { ManualClock } from '../../../src/util/clock.js';
import { context, loadProblems, policyFrom } from './support.js';

const clock = new ManualClock();
const applies = (when: unknown, overrides: Partial<PolicyContext> = {}) => compileCondition(whenSchema.parse(when))(context(clock, overrides));
const alice = { name: 'alice', senders: [], groups: ['staff', 'sales'] };
const bob = { name: 'bob', senders: [], groups: [] };

describe('when a rule applies', () => {
  test('a rule without conditions applies to every transaction', () => {
    assert.equal(compileCondition(undefined)(context(clock, { user: undefined })), true);
  });

  test('users match the authenticated user by exact name', () => {
    assert.equal(applies({ users: ['bob', 'alice'] }, { user: alice }), true);
    assert.equal(applies({ users: ['bob'] }, { user: alice }), false);
    assert.equal(applies({ users: ['Alice'] }, { user: alice }), false);
    assert.equal(applies({ users: ['alice'] }, { user: undefined }), false);
  });

  test('groups match when the user is in any listed group', () => {
    assert.equal(applies({ groups: ['ops', 'sales'] }, { user: alice }), true);
    assert.equal(applies({ groups: ['ops'] }, { user: alice }), false);
    assert.equal(applies({ groups: ['staff'] }, { user: bob }), false);
  });

  test('IPv4 client CIDRs match addresses inside the block, also as IPv4-mapped IPv6', () => {
    const when = { clientCidrs: ['10.0.0.0/8', '192.0.2.7'] };
    assert.equal(applies(when, { client: { address: '10.20.30.40', port: 1 } }), true);
    assert.equal(applies(when, { client: { address: '::ffff:10.1.2.3', port: 1 } }), true);
    assert.equal(applies(when, { client: { address: '192.0.2.7', port: 1 } }), true);
    assert.equal(applies(when, { client: { address: '192.0.2.8', port: 1 } }), false);
    assert.equal(applies(when, { client: { address: '11.0.0.1', port: 1 } }), false);
  });

  test('IPv6 client CIDRs match IPv6 addresses in the block, written in any form', () => {
    const when = { clientCidrs: ['2001:db8:abcd::/48'] };
    assert.equal(applies(when, { client: { address: '2001:db8:abcd:12::1', port: 1 } }), true);
    assert.equal(applies(when, { client: { address: '2001:0DB8:ABCD:0000:0000:0000:0000:0009', port: 1 } }), true);
    assert.equal(applies(when, { client: { address: '2001:db8:abce::1', port: 1 } }), false);
    assert.equal(applies(when, { client: { address: '10.0.0.1', port: 1 } }), false);
  });

  test('listeners match the listener the client connected to', () => {
    assert.equal(applies({ listeners: ['submissions'] }, { listener: 'submissions' }), true);
    assert.equal(applies({ listeners: ['submissions'] }, { listener: 'submission' }), false);
  });

  test('sender domains match exactly or, with *., any subdomain, ignoring case', () => {
    const sender = (s: string) => ({ envelope: { sender: s, recipients: [] } });
    assert.equal(applies({ senderDomains: ['example.com'] }, sender('Alice@EXAMPLE.com')), true);
    assert.equal(applies({ senderDomains: ['example.com'] }, sender('alice@mail.example.com')), false);
    assert.equal(applies({ senderDomains: ['*.example.com'] }, sender('alice@mail.Example.com')), true);
    assert.equal(applies({ senderDomains: ['*.example.com'] }, sender('alice@example.com')), false);
    assert.equal(applies({ senderDomains: ['*.example.com'] }, sender('alice@badexample.com')), false);
  });

  test('internationalised sender domains match in either their Unicode or their xn-- form', () => {
    const sender = (s: string) => ({ envelope: { sender: s, recipients: [] } });
    assert.equal(applies({ senderDomains: ['bücher.de'] }, sender('info@xn--bcher-kva.de')), true);
    assert.equal(applies({ senderDomains: ['xn--bcher-kva.de'] }, sender('info@Bücher.de')), true);
    assert.equal(applies({ senderDomains: ['*.bücher.de'] }, sender('info@shop.bücher.de')), true);
  });

  test('the null sender matches no sender domain list', () => {
    assert.equal(applies({ senderDomains: ['example.com'] }, { envelope: { sender: '', recipients: [] } }), false);
  });

  test('recipient domains look at the current recipient at rcpt', () => {
    const when = { recipientDomains: ['partner.example'] };
    const atRcpt = (recipient: string, earlier: string[]) => ({ stage: 'rcpt' as const, recipient, envelope: { sender: 'a@example.com', recipients: earlier } });
    assert.equal(applies(when, atRcpt('x@PARTNER.example', [])), true);
    assert.equal(applies(when, atRcpt('x@other.example', ['y@partner.example'])), false);
  });

  test('recipient domains at data match when any recipient matches', () => {
    const when = { recipientDomains: ['*.partner.example'] };
    const atData = (recipients: string[]) => ({ stage: 'data' as const, envelope: { sender: 'a@example.com', recipients } });
    assert.equal(applies(when, atData(['a@other.example', 'b@eu.partner.example'])), true);
    assert.equal(applies(when, atData(['a@other.example', 'b@partner.example'])), false);
  });

  test('every listed condition must hold', () => {
    const when = { groups: ['staff'], listeners: ['submissions'], clientCidrs: ['192.0.2.0/24'] };
    assert.equal(applies(when, { user: alice, listener: 'submissions' }), true);
    assert.equal(applies(when, { user: alice, listener: 'submission' }), false);
    assert.equal(applies(when, { user: bob, listener: 'submissions' }), false);
  });

  test('a rule whose conditions do not hold is skipped and reported nowhere', async (t) => {
    const { engine, clock: c, decisions, cleanup } = await policyFrom({
      'p.yaml': 'rules:\n  - { name: ops-only, type: answer, when: { groups: [ops] }, params: { action: reject } }\n  - { name: everyone, type: answer }\n',
    });
    t.after(cleanup);
    const outcome = await engine.evaluate(context(c));
    assert.equal(outcome.verdict.action, 'continue');
    assert.deepEqual(decisions.map((d) => d.rule), ['everyone']);
  });
});

describe('conditions a policy file may not have', () => {
  test('malformed CIDRs, host bits past the prefix, bad domains and empty lists are load errors with their key', async () => {
    const problems = await loadProblems({
      'p.yaml': [
        'rules:',
        '  - name: r',
        '    type: answer',
        '    when:',
        '      clientCidrs: [10.0.0.0/33, 10.1.2.3/8, "2001:db8::/129", not-an-ip]',
        '      senderDomains: [exa_mple..com, "foo.*.example.com"]',
        '      users: []',
        '      weekdays: [monday]',
        '',
      ].join('\n'),
    });
    assert.deepEqual(problems, [
      'p.yaml:5: rules[0].when.clientCidrs[0]: "10.0.0.0/33" is not an IP address or a CIDR network (192.0.2.0/24, 2001:db8::/32)',
      'p.yaml:5: rules[0].when.clientCidrs[1]: "10.1.2.3/8" has host bits set after the prefix; the network is 10.0.0.0/8',
      'p.yaml:5: rules[0].when.clientCidrs[2]: "2001:db8::/129" is not an IP address or a CIDR network (192.0.2.0/24, 2001:db8::/32)',
      'p.yaml:5: rules[0].when.clientCidrs[3]: "not-an-ip" is not an IP address or a CIDR network (192.0.2.0/24, 2001:db8::/32)',
      'p.yaml:6: rules[0].when.senderDomains[0]: "exa_mple..com" is not a domain',
      'p.yaml:6: rules[0].when.senderDomains[1]: "foo.*.example.com": a wildcard must be the whole first label (*.example.com) or the whole entry (*)',
      'p.yaml:7: rules[0].when.users: an empty list matches nothing; leave the key out to not filter on it',
      'p.yaml:8: rules[0].when.weekdays: unknown key',
    ]);
  });

  test('a condition that cannot be known yet at the rule\'s stage is a load error', async () => {
    const problems = await loadProblems({
      'p.yaml': 'rules:\n  - name: early\n    type: answer\n    stage: connect\n    when: { senderDomains: [example.com] }\n',
    });
    assert.deepEqual(problems, [
      'p.yaml:5: rules[0].when.senderDomains: is not known yet at the connect stage (only from mail on), so the rule would never run',
    ]);
  });
});
