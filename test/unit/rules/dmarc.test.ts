import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import dmarc from '../../../src/rules/dmarc.js';
import { BUILTIN_RULE_TYPES } from '../../../src/rules/index.js';
import type { RuleDeps } from '../../../src/policy/types.js';
import { MAX_SIGNATURES } from '../../../src/rules/shared/dkimSignatures.js';
import { MessageSpool, createRule, dataContext, fakeDeps, parseParams, verdictOf } from './context.js';
import { keyRecords, rsaKey, signMessage } from './dkimFixtures.js';
import { FakeZone, txt } from './fakeZone.js';

const spool = new MessageSpool();
after(() => spool.remove());

const EGRESS = '203.0.113.9';

const message = (from: string) => `From: ${from}
To: bob@example.org
Subject: Report
Date: Thu, 01 Jan 2026 00:00:00 +0000
Message-ID: <report-1@example.com>

The report.
`;

/** Postern's signer as rules see it: the d= per From domain it has a key for. */
const signingFor = (domains: Record<string, string>): RuleDeps['signing'] => ({ signingDomainFor: (from) => domains[from] });

const BASE_ZONE = {
  '_dmarc.example.com TXT': txt('v=DMARC1; p=reject; rua=mailto:dmarc@example.com'),
  'example.com TXT': txt(`v=spf1 ip4:${EGRESS} -all`),
  '_dmarc.strict.example TXT': txt('v=DMARC1; p=quarantine; adkim=s; aspf=s'),
  'strict.example TXT': txt(`v=spf1 ip4:${EGRESS} -all`),
  'bounces.strict.example TXT': txt(`v=spf1 ip4:${EGRESS} -all`),
  'nodmarc.example TXT': txt(`v=spf1 ip4:${EGRESS} -all`),
  '_dmarc.twice.example TXT': txt('v=DMARC1; p=none', 'v=DMARC1; p=reject'),
  '_dmarc.xn--bcher-kva.example TXT': txt('v=DMARC1; p=none'),
  'other.example TXT': txt(`v=spf1 ip4:${EGRESS} -all`),
};

async function evaluate(options: {
  from: string;
  sender?: string;
  params?: Record<string, unknown>;
  signing?: RuleDeps['signing'];
  zone?: FakeZone;
  raw?: string;
}) {
  const zone = options.zone ?? new FakeZone(BASE_ZONE);
  const rule = createRule(dmarc, options.params ?? {}, { ...fakeDeps(), resolver: zone.resolver, ...(options.signing && { signing: options.signing }) });
  const ctx = dataContext(spool.add(options.raw ?? message(options.from)), { envelope: { sender: options.sender ?? 'bounces@other.example' } });
  return { verdict: await verdictOf(rule, ctx), asked: zone.asked };
}

describe('dmarc: the record', () => {
  test('a From domain that publishes no DMARC record is rejected with 550 5.7.1 naming it', async () => {
    const { verdict, asked } = await evaluate({ from: 'Ops <ops@nodmarc.example>', signing: signingFor({ 'nodmarc.example': 'nodmarc.example' }) });
    assert.deepEqual(verdict, {
      action: 'reject',
      code: 550,
      enhanced: '5.7.1',
      text: 'nodmarc.example publishes no DMARC record (a TXT record at _dmarc.nodmarc.example)',
    });
    assert.deepEqual(asked, ['_dmarc.nodmarc.example TXT']);
  });

  test('a subdomain without its own record falls back to the organizational domain (RFC 7489 6.6.3)', async () => {
    const { verdict, asked } = await evaluate({ from: 'news@news.example.com', signing: signingFor({ 'news.example.com': 'example.com' }) });
    assert.equal(verdict.action, 'continue');
    assert.deepEqual(asked, ['_dmarc.news.example.com TXT', '_dmarc.example.com TXT']);
  });

  test('two DMARC records at one name count as none', async () => {
    const { verdict } = await evaluate({ from: 'a@twice.example', signing: signingFor({ 'twice.example': 'twice.example' }) });
    assert.ok(verdict.action === 'reject' && verdict.text === 'twice.example publishes no DMARC record (a TXT record at _dmarc.twice.example)');
  });

  test('an internationalised From domain is looked up in its ASCII form', async () => {
    const { verdict, asked } = await evaluate({ from: 'info@Bücher.example', signing: signingFor({ 'xn--bcher-kva.example': 'xn--bcher-kva.example' }) });
    assert.equal(verdict.action, 'continue');
    assert.deepEqual(asked, ['_dmarc.xn--bcher-kva.example TXT']);
  });

  test('a record look-up that times out is deferred with 451 4.4.3', async () => {
    const zone = new FakeZone({ ...BASE_ZONE, '_dmarc.example.com TXT': 'ETIMEOUT' });
    const { verdict } = await evaluate({ from: 'a@example.com', zone, signing: signingFor({ 'example.com': 'example.com' }) });
    assert.deepEqual(verdict, {
      action: 'defer',
      code: 451,
      enhanced: '4.4.3',
      text: 'the DMARC record of example.com could not be looked up (DNS lookup failed); try again later',
    });
  });

  test('with requireRecord false a domain without a record is still held to relaxed alignment', async () => {
    const aligned = await evaluate({ from: 'a@nodmarc.example', params: { requireRecord: false }, signing: signingFor({ 'nodmarc.example': 'mail.nodmarc.example' }) });
    assert.equal(aligned.verdict.action, 'continue');
    const unaligned = await evaluate({ from: 'a@nodmarc.example', params: { requireRecord: false } });
    assert.ok(unaligned.verdict.action === 'reject' && unaligned.verdict.enhanced === '5.7.26');
  });
});

describe('dmarc: the From address', () => {
  test('a message without From is rejected with 550 5.7.1', async () => {
    const { verdict, asked } = await evaluate({ from: '', raw: 'To: bob@example.org\nSubject: x\n\nbody\n' });
    assert.deepEqual(verdict, { action: 'reject', code: 550, enhanced: '5.7.1', text: 'the message has no From address' });
    assert.deepEqual(asked, []);
  });

  test('a From with two addresses is rejected with 550 5.7.1 naming it', async () => {
    const { verdict } = await evaluate({ from: 'a@example.com, b@example.net' });
    assert.deepEqual(verdict, { action: 'reject', code: 550, enhanced: '5.7.1', text: 'the From field holds 2 addresses; it needs exactly one' });
  });

  test('two From fields are rejected with 550 5.7.1', async () => {
    const { verdict } = await evaluate({ from: 'a@example.com', raw: `From: b@example.net\n${message('a@example.com')}` });
    assert.ok(verdict.action === 'reject' && verdict.text === 'the message has 2 From fields; it needs exactly one From address');
  });

  test('a display name with a comma is one address', async () => {
    const { verdict } = await evaluate({ from: '"Example, Inc" <billing@example.com>', signing: signingFor({ 'example.com': 'example.com' }) });
    assert.equal(verdict.action, 'continue');
  });
});

describe('dmarc: alignment by DKIM', () => {
  test("Postern's signing domain aligns without any SPF look-up", async () => {
    const { verdict, asked } = await evaluate({ from: 'a@example.com', signing: signingFor({ 'example.com': 'example.com' }) });
    assert.equal(verdict.action, 'continue');
    assert.deepEqual(asked, ['_dmarc.example.com TXT']);
  });

  test('with adkim=s a parent signing domain does not align', async () => {
    const { verdict } = await evaluate({
      from: 'a@news.strict.example',
      sender: 'bounces@other.example',
      signing: signingFor({ 'news.strict.example': 'strict.example' }),
      zone: new FakeZone({ ...BASE_ZONE, '_dmarc.news.strict.example TXT': txt('v=DMARC1; p=reject; adkim=s') }),
    });
    assert.deepEqual(verdict, {
      action: 'reject',
      code: 550,
      enhanced: '5.7.26',
      text: 'mail From news.strict.example would not align: the DKIM key here signs as strict.example, which is not strictly aligned and the envelope sender bounces@other.example is not aligned',
    });
  });

  test("a client's own valid signature of the From domain aligns", async () => {
    const key = rsaKey('example.com', 'client');
    const raw = await signMessage(message('a@example.com'), [key]);
    const { verdict } = await evaluate({ from: 'a@example.com', raw, zone: new FakeZone({ ...BASE_ZONE, ...keyRecords(key) }) });
    assert.equal(verdict.action, 'continue');
  });

  test("a client's own signature that does not verify is named in the reply", async () => {
    const key = rsaKey('example.com', 'client');
    const raw = (await signMessage(message('a@example.com'), [key])).replace('The report.', 'Another report.');
    const { verdict } = await evaluate({ from: 'a@example.com', raw, zone: new FakeZone({ ...BASE_ZONE, ...keyRecords(key) }) });
    assert.deepEqual(verdict, {
      action: 'reject',
      code: 550,
      enhanced: '5.7.26',
      text: "mail From example.com would not align: no DKIM key for example.com here, the message's own DKIM signature of example.com does not verify: body hash did not verify and the envelope sender bounces@other.example is not aligned",
    });
  });

  test("a client's own signatures past the verification limit are not verified, and say so", async () => {
    const key = rsaKey('example.com', 'client');
    const signed = await signMessage(message('a@example.com'), [key]);
    // Everything before the message's own first field (From:) is the signature field.
    const signature = signed.slice(0, signed.indexOf('\r\nFrom:') + 2);
    assert.match(signature, /^DKIM-Signature:/);
    const raw = signature.repeat(MAX_SIGNATURES) + signed;
    const zone = new FakeZone({ ...BASE_ZONE, ...keyRecords(key) });
    const { verdict } = await evaluate({ from: 'a@example.com', raw, zone });
    assert.ok(verdict.action === 'reject' && verdict.enhanced === '5.7.26');
    assert.match(verdict.text, new RegExp(`the message carries ${MAX_SIGNATURES + 1} DKIM signatures; at most ${MAX_SIGNATURES} are verified`));
  });

  test("a client's own signature whose key look-up fails is deferred", async () => {
    const key = rsaKey('example.com', 'client');
    const raw = await signMessage(message('a@example.com'), [key]);
    const { verdict } = await evaluate({ from: 'a@example.com', raw, zone: new FakeZone({ ...BASE_ZONE, [`${key.name} TXT`]: 'ESERVFAIL' }) });
    assert.ok(verdict.action === 'defer' && verdict.code === 451 && verdict.enhanced === '4.4.3');
    assert.match(verdict.text, /^mail From example\.com could not be checked for alignment: .*key could not be looked up/);
  });
});

describe('dmarc: alignment by SPF', () => {
  test('the reply names what is missing when neither DKIM nor SPF aligns', async () => {
    const { verdict } = await evaluate({ from: 'a@example.com', sender: 'bounces@other.example', params: { egressIps: [EGRESS] } });
    assert.deepEqual(verdict, {
      action: 'reject',
      code: 550,
      enhanced: '5.7.26',
      text: 'mail From example.com would not align: no DKIM key for example.com here and the envelope sender bounces@other.example is not aligned',
    });
  });

  test('an envelope sender of a subdomain aligns (relaxed) when its SPF passes', async () => {
    const zone = new FakeZone({ ...BASE_ZONE, 'mail.example.com TXT': txt(`v=spf1 ip4:${EGRESS} -all`) });
    const { verdict, asked } = await evaluate({ from: 'a@example.com', sender: 'bounces@mail.example.com', params: { egressIps: [EGRESS] }, zone });
    assert.equal(verdict.action, 'continue');
    assert.ok(asked.includes('mail.example.com TXT'));
  });

  test('SPF must pass for every egress address, IPv4 and IPv6', async () => {
    const params = { egressIps: [EGRESS, '2001:db8::25'] };
    const v4Only = await evaluate({ from: 'a@example.com', sender: 'bounces@example.com', params });
    assert.ok(v4Only.verdict.action === 'reject' && v4Only.verdict.text.endsWith('example.com does not authorise 2001:db8::25 (SPF fail)'));
    const zone = new FakeZone({ ...BASE_ZONE, 'example.com TXT': txt(`v=spf1 ip4:${EGRESS} ip6:2001:db8::/32 -all`) });
    const both = await evaluate({ from: 'a@example.com', sender: 'bounces@example.com', params, zone });
    assert.equal(both.verdict.action, 'continue');
  });

  test('an aligned envelope sender whose SPF fails for an egress address names it', async () => {
    const { verdict } = await evaluate({ from: 'a@example.com', sender: 'bounces@example.com', params: { egressIps: [EGRESS, '198.51.100.7'] } });
    assert.ok(verdict.action === 'reject');
    assert.equal(verdict.text, 'mail From example.com would not align: no DKIM key for example.com here and example.com does not authorise 198.51.100.7 (SPF fail)');
  });

  test('with aspf=s a subdomain envelope sender does not align', async () => {
    const { verdict } = await evaluate({ from: 'a@strict.example', sender: 'x@bounces.strict.example', params: { egressIps: [EGRESS] } });
    assert.ok(verdict.action === 'reject');
    assert.equal(verdict.text, 'mail From strict.example would not align: no DKIM key for strict.example here and the envelope sender x@bounces.strict.example is not strictly aligned');
  });

  test('without egressIps an aligned envelope sender cannot vouch for the message', async () => {
    const { verdict, asked } = await evaluate({ from: 'a@example.com', sender: 'bounces@example.com' });
    assert.ok(verdict.action === 'reject');
    assert.equal(verdict.text, 'mail From example.com would not align: no DKIM key for example.com here and no egress addresses are set here to check SPF');
    assert.deepEqual(asked, ['_dmarc.example.com TXT']);
  });

  test('the null sender does not align by SPF', async () => {
    const { verdict } = await evaluate({ from: 'a@example.com', sender: '', params: { egressIps: [EGRESS] } });
    assert.ok(verdict.action === 'reject' && verdict.text.endsWith('and the envelope sender is the null sender <>'));
  });

  test('an SPF look-up that times out is deferred with 451 4.4.3', async () => {
    const zone = new FakeZone({ ...BASE_ZONE, 'example.com TXT': 'ETIMEOUT' });
    const { verdict } = await evaluate({ from: 'a@example.com', sender: 'bounces@example.com', params: { egressIps: [EGRESS] }, zone });
    assert.deepEqual(verdict, {
      action: 'defer',
      code: 451,
      enhanced: '4.4.3',
      text: 'mail From example.com could not be checked for alignment: the SPF record of example.com could not be checked (DNS lookup failed); try again later',
    });
  });

  test('an SPF temporary failure does not matter when DKIM aligns', async () => {
    const zone = new FakeZone({ ...BASE_ZONE, 'example.com TXT': 'ETIMEOUT' });
    const { verdict } = await evaluate({ from: 'a@example.com', sender: 'bounces@example.com', params: { egressIps: [EGRESS] }, zone, signing: signingFor({ 'example.com': 'example.com' }) });
    assert.equal(verdict.action, 'continue');
  });
});

describe('dmarc: params', () => {
  test('is a built-in rule type with requireRecord on and no egress addresses by default', () => {
    assert.ok(BUILTIN_RULE_TYPES.includes(dmarc as never));
    assert.deepEqual(parseParams(dmarc, {}), { requireRecord: true, egressIps: [] });
  });

  test('an egress address that is not an IP address is refused', () => {
    assert.throws(() => parseParams(dmarc, { egressIps: ['mail.example.com'] }), /egressIps\.0: must be an IPv4 or IPv6 address/);
  });
});
