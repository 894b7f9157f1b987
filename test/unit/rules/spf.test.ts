import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import spf, { NEGATIVE_TTL_MS, POSITIVE_TTL_MS } from '../../../src/rules/spf.js';
import { BUILTIN_RULE_TYPES } from '../../../src/rules/index.js';
import type { DnsResolver, Rule } from '../../../src/policy/types.js';
import { ManualClock } from '../../../src/util/clock.js';
import { createRule, fakeDeps, makeContext, parseParams, verdictOf } from './context.js';

/**
 * A zone as Node's resolver presents it: `records` maps "name TYPE" to the answer; a name with
 * no entry at all is ENOTFOUND, a name with entries of other types ENODATA, and an entry that
 * is an error code string ('ETIMEOUT') fails with that code. Every question is logged.
 */
class FakeZone {
  readonly asked: string[] = [];
  constructor(private readonly records: Record<string, unknown>) {}

  readonly resolver: DnsResolver = async (name, rrtype) => {
    const key = `${name} ${rrtype}`;
    this.asked.push(key);
    const answer = this.records[key];
    if (typeof answer === 'string') throw Object.assign(new Error(`query ${answer} ${name}`), { code: answer });
    if (answer !== undefined) return answer;
    const known = Object.keys(this.records).some((other) => other.startsWith(`${name} `));
    throw Object.assign(new Error(`query failed ${name}`), { code: known ? 'ENODATA' : 'ENOTFOUND' });
  };
}

const txt = (record: string) => [[record]];

function spfRule(zone: FakeZone, params: Record<string, unknown> = {}, clock = new ManualClock()): Rule {
  return createRule(spf, { egress: ['203.0.113.9'], ...params }, { ...fakeDeps(clock), resolver: zone.resolver });
}

const fromSender = (sender: string) => makeContext({ envelope: { sender } });

describe('spf: results', () => {
  test('an egress address listed with ip4: passes', async () => {
    const zone = new FakeZone({ 'example.com TXT': txt('v=spf1 ip4:203.0.113.0/28 -all') });
    assert.equal((await verdictOf(spfRule(zone), fromSender('alice@example.com'))).action, 'continue');
  });

  test('an egress address authorised through include: passes', async () => {
    const zone = new FakeZone({
      'example.com TXT': txt('v=spf1 include:_spf.provider.test -all'),
      '_spf.provider.test TXT': txt('v=spf1 ip4:203.0.113.9 -all'),
    });
    assert.equal((await verdictOf(spfRule(zone), fromSender('alice@example.com'))).action, 'continue');
    assert.ok(zone.asked.includes('_spf.provider.test TXT'));
  });

  test('an egress address authorised through a: passes', async () => {
    const zone = new FakeZone({
      'example.com TXT': txt('v=spf1 a:smtp.example.com -all'),
      'smtp.example.com A': ['203.0.113.9'],
      'smtp.example.com AAAA': ['2001:db8::25'],
    });
    assert.equal((await verdictOf(spfRule(zone), fromSender('alice@example.com'))).action, 'continue');
  });

  test('an egress address the record fails (-all) is rejected with 550 5.7.23 naming domain and address', async () => {
    const zone = new FakeZone({ 'example.com TXT': txt('v=spf1 ip4:192.0.2.1 -all') });
    assert.deepEqual(await verdictOf(spfRule(zone), fromSender('alice@example.com')), {
      action: 'reject',
      code: 550,
      enhanced: '5.7.23',
      text: 'example.com does not authorise 203.0.113.9 to send its mail (SPF fail); ask its administrator to add it to the SPF record',
    });
  });

  test('with onFail defer an SPF fail is deferred with 450 4.7.23', async () => {
    const zone = new FakeZone({ 'example.com TXT': txt('v=spf1 -all') });
    const verdict = await verdictOf(spfRule(zone, { onFail: 'defer' }), fromSender('alice@example.com'));
    assert.equal(verdict.action, 'defer');
    assert.ok(verdict.action === 'defer' && verdict.code === 450 && verdict.enhanced === '4.7.23');
  });

  test('a softfail (~all) continues by default and is rejected with onSoftFail reject', async () => {
    const zone = new FakeZone({ 'example.com TXT': txt('v=spf1 ip4:192.0.2.1 ~all') });
    assert.equal((await verdictOf(spfRule(zone), fromSender('alice@example.com'))).action, 'continue');
    const verdict = await verdictOf(spfRule(zone, { onSoftFail: 'reject' }), fromSender('alice@example.com'));
    assert.deepEqual(verdict, {
      action: 'reject',
      code: 550,
      enhanced: '5.7.23',
      text: 'example.com does not authorise 203.0.113.9 to send its mail (SPF softfail); ask its administrator to add it to the SPF record',
    });
  });

  test('a domain without an SPF record continues by default and is rejected with onNone reject', async () => {
    const zone = new FakeZone({ 'example.com MX': [{ exchange: 'mx.example.com', priority: 10 }], 'example.com TXT': txt('google-site-verification=abc') });
    assert.equal((await verdictOf(spfRule(zone), fromSender('alice@example.com'))).action, 'continue');
    const verdict = await verdictOf(spfRule(zone, { onNone: 'reject' }), fromSender('alice@example.com'));
    assert.equal(verdict.action, 'reject');
    assert.ok(verdict.action === 'reject' && verdict.enhanced === '5.7.23' && verdict.text.includes('(SPF none)'));
  });

  test('a domain that does not exist counts as no record', async () => {
    const zone = new FakeZone({});
    assert.equal((await verdictOf(spfRule(zone), fromSender('alice@nowhere.example'))).action, 'continue');
    assert.deepEqual(zone.asked, ['nowhere.example TXT']);
  });

  test('a neutral result (?all) is treated like no record', async () => {
    const zone = new FakeZone({ 'example.com TXT': txt('v=spf1 ?all') });
    assert.equal((await verdictOf(spfRule(zone), fromSender('alice@example.com'))).action, 'continue');
    const verdict = await verdictOf(spfRule(zone, { onNone: 'reject' }), fromSender('alice@example.com'));
    assert.ok(verdict.action === 'reject' && verdict.text.includes('(SPF neutral)'));
  });

  test('a DNS timeout defers with 451 4.7.24, or continues with onTempError continue', async () => {
    const zone = new FakeZone({ 'example.com TXT': 'ETIMEOUT' });
    assert.deepEqual(await verdictOf(spfRule(zone), fromSender('alice@example.com')), {
      action: 'defer',
      code: 451,
      enhanced: '4.7.24',
      text: 'the SPF record of example.com could not be checked (DNS lookup failed); try again later',
    });
    assert.equal((await verdictOf(spfRule(zone, { onTempError: 'continue' }), fromSender('alice@example.com'))).action, 'continue');
  });

  test('a timeout inside an include is a temporary error too', async () => {
    const zone = new FakeZone({ 'example.com TXT': txt('v=spf1 include:_spf.provider.test -all'), '_spf.provider.test TXT': 'ETIMEOUT' });
    assert.equal((await verdictOf(spfRule(zone), fromSender('alice@example.com'))).action, 'defer');
  });

  test('two SPF records are a permanent error: 550 5.7.24 with the reason', async () => {
    const zone = new FakeZone({ 'example.com TXT': [['v=spf1 ip4:203.0.113.9 -all'], ['v=spf1 -all']] });
    assert.deepEqual(await verdictOf(spfRule(zone), fromSender('alice@example.com')), {
      action: 'reject',
      code: 550,
      enhanced: '5.7.24',
      text: 'the SPF record of example.com is broken: multiple SPF records found for example.com',
    });
  });

  test('more than ten DNS lookups are a permanent error (RFC 7208 section 4.6.4)', async () => {
    const records: Record<string, unknown> = { 'example.com TXT': txt('v=spf1 include:l1.example.com -all') };
    for (let level = 1; level <= 12; level++) records[`l${level}.example.com TXT`] = txt(`v=spf1 include:l${level + 1}.example.com -all`);
    const zone = new FakeZone(records);
    assert.deepEqual(await verdictOf(spfRule(zone), fromSender('alice@example.com')), {
      action: 'reject',
      code: 550,
      enhanced: '5.7.24',
      text: 'the SPF record of example.com is broken: Too many DNS requests',
    });
  });

  test('an IPv6 egress address is checked against ip6: mechanisms', async () => {
    const zone = new FakeZone({ 'example.com TXT': txt('v=spf1 ip4:203.0.113.9 ip6:2001:db8:25::/48 -all') });
    assert.equal((await verdictOf(spfRule(zone, { egress: ['2001:db8:25::9'] }), fromSender('alice@example.com'))).action, 'continue');
    const verdict = await verdictOf(spfRule(zone, { egress: ['2001:db8:26::9'] }), fromSender('alice@example.com'));
    assert.ok(verdict.action === 'reject' && verdict.text.includes('2001:db8:26::9'));
  });

  test('every egress address must be authorised: the one that is not is named', async () => {
    const zone = new FakeZone({ 'example.com TXT': txt('v=spf1 ip4:203.0.113.9 -all') });
    const verdict = await verdictOf(spfRule(zone, { egress: ['203.0.113.9', '2001:db8::9'] }), fromSender('alice@example.com'));
    assert.ok(verdict.action === 'reject' && verdict.text.startsWith('example.com does not authorise 2001:db8::9 '));
  });

  test('an internationalised sender domain is looked up in its xn-- form', async () => {
    const zone = new FakeZone({ 'xn--bcher-kva.example TXT': txt('v=spf1 -all') });
    const verdict = await verdictOf(spfRule(zone), fromSender('jürgen@Bücher.example'));
    assert.deepEqual(zone.asked, ['xn--bcher-kva.example TXT']);
    assert.ok(verdict.action === 'reject' && verdict.text.startsWith('xn--bcher-kva.example does not authorise'));
  });

  test('an upper-case sender domain is looked up in lower case', async () => {
    const zone = new FakeZone({ 'example.com TXT': txt('v=spf1 ip4:203.0.113.9 -all') });
    assert.equal((await verdictOf(spfRule(zone), fromSender('ALICE@EXAMPLE.COM'))).action, 'continue');
    assert.deepEqual(zone.asked, ['example.com TXT']);
  });

  test('the null sender continues without a DNS lookup', async () => {
    const zone = new FakeZone({});
    assert.equal((await verdictOf(spfRule(zone, { onNone: 'reject' }), fromSender(''))).action, 'continue');
    assert.deepEqual(zone.asked, []);
  });
});

describe('spf: DNS cache', () => {
  test('a second evaluation within 5 minutes asks the resolver nothing; after 5 minutes it asks again', async () => {
    const zone = new FakeZone({
      'example.com TXT': txt('v=spf1 include:_spf.provider.test -all'),
      '_spf.provider.test TXT': txt('v=spf1 ip4:203.0.113.9 -all'),
    });
    const clock = new ManualClock();
    const rule = spfRule(zone, {}, clock);
    assert.equal((await verdictOf(rule, fromSender('alice@example.com'))).action, 'continue');
    assert.equal(zone.asked.length, 2);

    clock.advance(POSITIVE_TTL_MS - 1);
    assert.equal((await verdictOf(rule, fromSender('bob@Example.com'))).action, 'continue');
    assert.equal(zone.asked.length, 2);

    clock.advance(1);
    assert.equal((await verdictOf(rule, fromSender('alice@example.com'))).action, 'continue');
    assert.equal(zone.asked.length, 4);
  });

  test('a missing record is remembered for 1 minute only', async () => {
    const zone = new FakeZone({});
    const clock = new ManualClock();
    const rule = spfRule(zone, {}, clock);
    await verdictOf(rule, fromSender('alice@example.com'));
    clock.advance(NEGATIVE_TTL_MS - 1);
    await verdictOf(rule, fromSender('alice@example.com'));
    assert.equal(zone.asked.length, 1);
    clock.advance(1);
    await verdictOf(rule, fromSender('alice@example.com'));
    assert.equal(zone.asked.length, 2);
  });

  test('a timeout is not remembered: the next message asks again', async () => {
    const zone = new FakeZone({ 'example.com TXT': 'ETIMEOUT' });
    const rule = spfRule(zone);
    await verdictOf(rule, fromSender('alice@example.com'));
    await verdictOf(rule, fromSender('alice@example.com'));
    assert.deepEqual(zone.asked, ['example.com TXT', 'example.com TXT']);
  });

  test('two rule instances keep separate caches', async () => {
    const zone = new FakeZone({ 'example.com TXT': txt('v=spf1 ip4:203.0.113.9 -all') });
    const clock = new ManualClock();
    await verdictOf(spfRule(zone, {}, clock), fromSender('alice@example.com'));
    await verdictOf(spfRule(zone, {}, clock), fromSender('alice@example.com'));
    assert.equal(zone.asked.length, 2);
  });
});

describe('spf: params', () => {
  test('is a built-in rule type running at mail', () => {
    assert.ok(BUILTIN_RULE_TYPES.includes(spf as never));
    assert.deepEqual(spf.stages, ['mail']);
  });

  test('defaults: reject on fail, defer on temporary errors, continue on none and softfail', () => {
    assert.deepEqual(parseParams(spf, { egress: ['192.0.2.1'] }), {
      egress: ['192.0.2.1'],
      onFail: 'reject',
      onTempError: 'defer',
      onNone: 'continue',
      onSoftFail: 'continue',
    });
  });

  test('at least one egress address is required, and each must be an IP address', () => {
    assert.throws(() => parseParams(spf, {}), /egress/);
    assert.throws(() => parseParams(spf, { egress: [] }), /egress/);
    assert.throws(() => parseParams(spf, { egress: ['relay.example.com'] }), /egress\.0: must be an IPv4 or IPv6 address/);
    assert.throws(() => parseParams(spf, { egress: ['192.0.2.1'], onFail: 'ignore' }), /onFail/);
  });
});
