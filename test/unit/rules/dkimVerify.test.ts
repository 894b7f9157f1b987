import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import dkimVerify from '../../../src/rules/dkimVerify.js';
import { MAX_SIGNATURES } from '../../../src/rules/shared/dkimSignatures.js';
import { BUILTIN_RULE_TYPES } from '../../../src/rules/index.js';
import type { Rule } from '../../../src/policy/types.js';
import { ManualClock } from '../../../src/util/clock.js';
import { MessageSpool, createRule, dataContext, fakeDeps, parseParams, verdictOf } from './context.js';
import { ed25519Key, keyRecords, rsaKey, signMessage } from './dkimFixtures.js';
import { FakeZone } from './fakeZone.js';

const spool = new MessageSpool();
after(() => spool.remove());

const exampleKey = rsaKey('example.com');
const exampleEdKey = ed25519Key('example.com');
const newsKey = rsaKey('news.example.com', 'news');
const espKey = rsaKey('esp.example.net', 'esp');
const weakKey = rsaKey('weak.example', 'weak', 512);
const unpublishedKey = rsaKey('example.com', 'gone');

const BODY = `From: "Example, Inc" <news@example.com>
To: bob@example.org
Subject: The news
Date: Thu, 01 Jan 2026 00:00:00 +0000
Message-ID: <news-1@example.com>

Hello Bob.
`;

function rule(zone: FakeZone, params: Record<string, unknown> = {}, clock = new ManualClock()): Rule {
  return createRule(dkimVerify, params, { ...fakeDeps(clock), resolver: zone.resolver });
}

const zone = new FakeZone(keyRecords(exampleKey, exampleEdKey, newsKey, espKey, weakKey));

async function check(raw: string, params: Record<string, unknown> = {}, dns = zone) {
  return verdictOf(rule(dns, params), dataContext(spool.add(raw)));
}

describe('dkim-verify', () => {
  test('an unsigned message continues without a DNS look-up', async () => {
    const lookups = new FakeZone({});
    assert.deepEqual(await check(BODY, {}, lookups), { action: 'continue' });
    assert.deepEqual(lookups.asked, []);
  });

  test('an unsigned message is rejected with 550 5.7.20 when a signature is required', async () => {
    assert.deepEqual(await check(BODY, { requireSignature: true }), {
      action: 'reject',
      code: 550,
      enhanced: '5.7.20',
      text: 'the message carries no DKIM signature; it must be signed',
    });
  });

  test('a message with a valid RSA signature continues', async () => {
    assert.equal((await check(await signMessage(BODY, [exampleKey]))).action, 'continue');
  });

  test('a message with a valid Ed25519 signature continues', async () => {
    assert.equal((await check(await signMessage(BODY, [exampleEdKey]))).action, 'continue');
  });

  test('a body changed after signing is rejected with 550 5.7.20 naming the domain and the failure', async () => {
    const signed = (await signMessage(BODY, [exampleKey])).replace('Hello Bob.', 'Hello Mallory.');
    assert.deepEqual(await check(signed), {
      action: 'reject',
      code: 550,
      enhanced: '5.7.20',
      text: 'the DKIM signature of example.com does not verify: body hash did not verify',
    });
  });

  test('a signed header changed after signing is a bad signature', async () => {
    const signed = (await signMessage(BODY, [exampleKey])).replace('Subject: The news', 'Subject: Other news');
    const verdict = await check(signed);
    assert.ok(verdict.action === 'reject' && verdict.enhanced === '5.7.20');
    assert.equal(verdict.text, 'the DKIM signature of example.com does not verify: bad signature');
  });

  test('a signature whose key is not published names where the key was looked for', async () => {
    const verdict = await check(await signMessage(BODY, [unpublishedKey]));
    assert.ok(verdict.action === 'reject');
    assert.equal(verdict.text, 'the DKIM signature of example.com does not verify: no key is published at gone._domainkey.example.com');
  });

  test('one valid signature among broken ones is enough', async () => {
    const signed = await signMessage(BODY, [unpublishedKey, espKey]);
    assert.equal((await check(signed)).action, 'continue');
  });

  test('a signature made with a key under 1024 bits is not acceptable: 550 5.7.21', async () => {
    assert.deepEqual(await check(await signMessage(BODY, [weakKey])), {
      action: 'reject',
      code: 550,
      enhanced: '5.7.21',
      text: 'the DKIM signature of weak.example is not acceptable: its key is shorter than 1024 bits',
    });
  });

  test('a signature leaving part of the body unsigned (l=) is not acceptable: 550 5.7.21', async () => {
    const verdict = await check(await signMessage(BODY, [exampleKey], { maxBodyLength: 5 }));
    assert.ok(verdict.action === 'reject' && verdict.enhanced === '5.7.21');
    assert.equal(verdict.text, 'the DKIM signature of example.com is not acceptable: it leaves part of the body unsigned (l= tag)');
  });

  test('more signatures than are verified is refused up front with 550 5.7.20, without a DNS look-up', async () => {
    const lookups = new FakeZone(keyRecords(exampleKey));
    const signed = await signMessage(BODY, [exampleKey]);
    const signature = signed.slice(0, signed.indexOf('From: "Example'));
    const many = signature.repeat(MAX_SIGNATURES + 1) + signed.slice(signature.length);
    assert.deepEqual(await check(many, {}, lookups), {
      action: 'reject',
      code: 550,
      enhanced: '5.7.20',
      text: `the message carries ${MAX_SIGNATURES + 1} DKIM signatures; at most ${MAX_SIGNATURES} are verified`,
    });
    assert.deepEqual(lookups.asked, []);
    const enough = signature.repeat(MAX_SIGNATURES) + signed.slice(signature.length);
    assert.equal((await check(enough, {}, lookups)).action, 'continue', 'the limit itself is verified');
  });

  test('a DKIM-Signature field that cannot be used at all is rejected with 550 5.7.20', async () => {
    const verdict = await check(`DKIM-Signature: v=1; a=rsa-sha256; b=abc\n${BODY}`);
    assert.ok(verdict.action === 'reject' && verdict.enhanced === '5.7.20');
    assert.match(verdict.text, /^the DKIM-Signature field cannot be used/);
  });

  test('a key look-up that times out is deferred with 451 4.4.3', async () => {
    const timingOut = new FakeZone({ [`${exampleKey.name} TXT`]: 'ETIMEOUT' });
    assert.deepEqual(await check(await signMessage(BODY, [exampleKey]), {}, timingOut), {
      action: 'defer',
      code: 451,
      enhanced: '4.4.3',
      text: 'the DKIM key of example.com could not be looked up (DNS lookup failed); try again later',
    });
  });

  test('a valid signature decides even when another key look-up times out', async () => {
    const partly = new FakeZone({ ...keyRecords(espKey), [`${exampleKey.name} TXT`]: 'ESERVFAIL' });
    assert.equal((await check(await signMessage(BODY, [exampleKey, espKey]), {}, partly)).action, 'continue');
  });

  test('a signature past its x= expiry fails by the injected clock, and verifies before it', async () => {
    const expiresAt = Date.UTC(2026, 0, 2);
    const signed = await signMessage(BODY, [exampleKey], { expiresAt });
    const before = await verdictOf(rule(zone, {}, new ManualClock(expiresAt - 1000)), dataContext(spool.add(signed)));
    assert.equal(before.action, 'continue');
    const afterExpiry = await verdictOf(rule(zone, {}, new ManualClock(expiresAt + 1000)), dataContext(spool.add(signed)));
    assert.ok(afterExpiry.action === 'reject');
    assert.equal(afterExpiry.text, 'the DKIM signature of example.com does not verify: expired');
  });

  describe('with requireFromDomain', () => {
    test('a valid signature of the From domain continues', async () => {
      assert.equal((await check(await signMessage(BODY, [exampleKey]), { requireFromDomain: true })).action, 'continue');
    });

    test('a valid signature of a subdomain of the From domain aligns (relaxed)', async () => {
      const fromSub = BODY.replace('<news@example.com>', '<editor@example.com>');
      assert.equal((await check(await signMessage(fromSub, [newsKey]), { requireFromDomain: true })).action, 'continue');
    });

    test("only a provider's valid signature is rejected with 550 5.7.22", async () => {
      assert.deepEqual(await check(await signMessage(BODY, [espKey]), { requireFromDomain: true }), {
        action: 'reject',
        code: 550,
        enhanced: '5.7.22',
        text: 'no valid DKIM signature of the From domain example.com: the message is signed by esp.example.net only',
      });
      // Without the option the provider's signature is enough.
      assert.equal((await check(await signMessage(BODY, [espKey]))).action, 'continue');
    });

    test("a broken author signature next to a provider's valid one names the author's failure", async () => {
      const signed = await signMessage(BODY, [unpublishedKey, espKey]);
      const verdict = await check(signed, { requireFromDomain: true });
      assert.ok(verdict.action === 'reject' && verdict.enhanced === '5.7.22');
      assert.equal(
        verdict.text,
        'no valid DKIM signature of the From domain example.com: the DKIM signature of example.com does not verify: no key is published at gone._domainkey.example.com',
      );
    });

    test('two From addresses are rejected with 550 5.7.1 before the message is read', async () => {
      const lookups = new FakeZone(keyRecords(exampleKey));
      const twoAuthors = (await signMessage(BODY, [exampleKey])).replace('<news@example.com>', '<news@example.com>, other@example.net');
      assert.deepEqual(await check(twoAuthors, { requireFromDomain: true }, lookups), {
        action: 'reject',
        code: 550,
        enhanced: '5.7.1',
        text: 'the From field holds 2 addresses; it needs exactly one',
      });
      assert.deepEqual(lookups.asked, []);
    });
  });

  test('is a built-in rule type that refuses unknown params', () => {
    assert.ok(BUILTIN_RULE_TYPES.includes(dkimVerify as never));
    assert.throws(() => parseParams(dkimVerify, { requireFromDomian: true }), /requireFromDomian/);
  });
});
