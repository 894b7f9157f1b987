import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import bulkSender from '../../../src/rules/bulkSender.js';
import { BUILTIN_RULE_TYPES } from '../../../src/rules/index.js';
import type { RuleDeps } from '../../../src/policy/types.js';
import { MessageSpool, alice, createRule, dataContext, fakeDeps, parseParams, verdictOf } from './context.js';
import { keyRecords, rsaKey, signMessage } from './dkimFixtures.js';
import { FakeZone, txt } from './fakeZone.js';

const spool = new MessageSpool();
after(() => spool.remove());

const UNSUBSCRIBE = 'List-Unsubscribe: <mailto:unsub@example.com?subject=unsubscribe>, <https://example.com/unsub/abc123>';
const ONE_CLICK = 'List-Unsubscribe-Post: List-Unsubscribe=One-Click';

function newsletter(extraHeaders: string[], from = 'News <news@example.com>'): string {
  return [
    `From: ${from}`,
    'To: bob@example.org',
    'Subject: Our news',
    'Date: Thu, 01 Jan 2026 00:00:00 +0000',
    'Message-ID: <news-1@example.com>',
    ...extraHeaders,
    '',
    'This month.',
    '',
  ].join('\n');
}

const ZONE = {
  '_dmarc.example.com TXT': txt('v=DMARC1; p=none'),
  '_dmarc.strict.example TXT': txt('v=DMARC1; p=none; adkim=s'),
};

const signingFor = (domains: Record<string, string>): RuleDeps['signing'] => ({ signingDomainFor: (from) => domains[from] });
const POSTERN_SIGNS = signingFor({ 'example.com': 'example.com', 'nodmarc.example': 'nodmarc.example', 'news.strict.example': 'strict.example' });

async function evaluate(options: {
  raw: string;
  params?: Record<string, unknown>;
  signing?: RuleDeps['signing'] | null;
  zone?: FakeZone;
  recipients?: string[];
  groups?: string[];
}) {
  const zone = options.zone ?? new FakeZone(ZONE);
  const signing = options.signing === null ? undefined : (options.signing ?? POSTERN_SIGNS);
  const rule = createRule(bulkSender, options.params ?? {}, { ...fakeDeps(), resolver: zone.resolver, ...(signing && { signing }) });
  const ctx = dataContext(spool.add(options.raw), {
    user: { ...alice, groups: options.groups ?? ['staff'] },
    envelope: { sender: 'bounces@example.com', recipients: options.recipients ?? ['bob@example.org'] },
  });
  return { verdict: await verdictOf(rule, ctx), asked: zone.asked };
}

describe('bulk-sender: what counts as bulk', () => {
  test('a message that is not bulk continues without a DNS look-up', async () => {
    const { verdict, asked } = await evaluate({ raw: newsletter([]), recipients: Array.from({ length: 500 }, (_, i) => `r${i}@example.org`) });
    assert.deepEqual(verdict, { action: 'continue' });
    assert.deepEqual(asked, []);
  });

  test('a user in one of the groups sends bulk mail', async () => {
    const { verdict } = await evaluate({ raw: newsletter([]), params: { groups: ['marketing'] }, groups: ['staff', 'marketing'] });
    assert.equal(verdict.action, 'reject');
    const other = await evaluate({ raw: newsletter([]), params: { groups: ['marketing'] }, groups: ['staff'] });
    assert.equal(other.verdict.action, 'continue');
  });

  test('Precedence: bulk and Precedence: list mark a message bulk, Precedence: junk does not', async () => {
    assert.equal((await evaluate({ raw: newsletter(['Precedence: bulk']) })).verdict.action, 'reject');
    assert.equal((await evaluate({ raw: newsletter(['Precedence:  List ']) })).verdict.action, 'reject');
    assert.equal((await evaluate({ raw: newsletter(['Precedence: junk']) })).verdict.action, 'continue');
  });

  test('a List-Id marks a message bulk', async () => {
    assert.equal((await evaluate({ raw: newsletter(['List-Id: News <news.example.com>']) })).verdict.action, 'reject');
  });

  test('minRecipients counts recipients only when set', async () => {
    const recipients = ['a@example.org', 'b@example.org', 'c@example.org'];
    assert.equal((await evaluate({ raw: newsletter([]), params: { minRecipients: 3 }, recipients })).verdict.action, 'reject');
    assert.equal((await evaluate({ raw: newsletter([]), params: { minRecipients: 4 }, recipients })).verdict.action, 'continue');
  });
});

describe('bulk-sender: the requirements', () => {
  test('bulk mail with one-click unsubscribe, aligned DKIM and a DMARC record continues, tagged bulk', async () => {
    const { verdict } = await evaluate({ raw: newsletter(['Precedence: bulk', UNSUBSCRIBE, ONE_CLICK]) });
    assert.deepEqual(verdict, { action: 'continue', annotations: { tags: ['bulk'] } });
  });

  test('every missing item is listed in one 550 5.7.1 reply', async () => {
    const { verdict } = await evaluate({ raw: newsletter(['Precedence: bulk'], 'a@nodmarc.example'), signing: null });
    assert.deepEqual(verdict, {
      action: 'reject',
      code: 550,
      enhanced: '5.7.1',
      text:
        'bulk mail from nodmarc.example must have: a List-Unsubscribe header with an https: URI; ' +
        'List-Unsubscribe-Post: List-Unsubscribe=One-Click (RFC 8058); a DKIM signature aligned with the From domain; a DMARC record',
    });
  });

  test('a List-Unsubscribe with only a mailto: URI is not enough', async () => {
    const { verdict } = await evaluate({ raw: newsletter(['Precedence: bulk', 'List-Unsubscribe: <mailto:unsub@example.com>', ONE_CLICK]) });
    assert.ok(verdict.action === 'reject');
    assert.equal(verdict.text, 'bulk mail from example.com must have: a List-Unsubscribe header with an https: URI');
  });

  test('a List-Unsubscribe-Post with another value is not enough', async () => {
    const { verdict } = await evaluate({ raw: newsletter(['Precedence: bulk', UNSUBSCRIBE, 'List-Unsubscribe-Post: List-Unsubscribe=Yes']) });
    assert.ok(verdict.action === 'reject');
    assert.equal(verdict.text, 'bulk mail from example.com must have: List-Unsubscribe-Post: List-Unsubscribe=One-Click (RFC 8058)');
  });

  test("a signing domain that is not aligned under the record's adkim=s is missing DKIM", async () => {
    const zone = new FakeZone({ ...ZONE, '_dmarc.news.strict.example TXT': txt('v=DMARC1; p=none; adkim=s') });
    const { verdict } = await evaluate({ raw: newsletter(['Precedence: bulk', UNSUBSCRIBE, ONE_CLICK], 'a@news.strict.example'), zone });
    assert.ok(verdict.action === 'reject');
    assert.equal(verdict.text, 'bulk mail from news.strict.example must have: a DKIM signature aligned with the From domain');
  });

  test("the client's own valid signature of the From domain counts as aligned DKIM", async () => {
    const key = rsaKey('example.com', 'client');
    const raw = await signMessage(newsletter(['Precedence: bulk', UNSUBSCRIBE, ONE_CLICK]), [key]);
    const { verdict } = await evaluate({ raw, signing: null, zone: new FakeZone({ ...ZONE, ...keyRecords(key) }) });
    assert.equal(verdict.action, 'continue');
  });

  test('a message with two From addresses is told it needs exactly one', async () => {
    const { verdict, asked } = await evaluate({ raw: newsletter(['Precedence: bulk', UNSUBSCRIBE, ONE_CLICK], 'a@example.com, b@example.com') });
    assert.ok(verdict.action === 'reject');
    assert.equal(verdict.text, 'bulk mail must have: exactly one From address');
    assert.deepEqual(asked, []);
  });

  test('a DMARC look-up that times out defers with 451 4.4.3 when nothing else is missing', async () => {
    const zone = new FakeZone({ '_dmarc.example.com TXT': 'ETIMEOUT' });
    const { verdict } = await evaluate({ raw: newsletter(['Precedence: bulk', UNSUBSCRIBE, ONE_CLICK]), zone });
    assert.deepEqual(verdict, {
      action: 'defer',
      code: 451,
      enhanced: '4.4.3',
      text: 'bulk mail from example.com could not be checked: its DMARC record could not be looked up (DNS lookup failed); try again later',
    });
  });

  test('a DMARC look-up that times out does not hide what is certainly missing', async () => {
    const zone = new FakeZone({ '_dmarc.example.com TXT': 'ETIMEOUT' });
    const { verdict } = await evaluate({ raw: newsletter(['Precedence: bulk', ONE_CLICK]), zone });
    assert.ok(verdict.action === 'reject' && verdict.code === 550);
    assert.equal(verdict.text, 'bulk mail from example.com must have: a List-Unsubscribe header with an https: URI');
  });

  test('the reply stays ASCII and under 400 characters for a long internationalised domain', async () => {
    const label = 'ü'.repeat(40);
    const domain = `${label}.${label}.${label}.example`;
    const { verdict } = await evaluate({ raw: newsletter(['Precedence: bulk'], `a@${domain}`), signing: null });
    assert.ok(verdict.action === 'reject');
    assert.ok(verdict.text.length < 400, `${verdict.text.length} characters`);
    assert.match(verdict.text, /^[\x20-\x7e]+$/);
    assert.match(verdict.text, /^bulk mail from xn--/);
  });
});

describe('bulk-sender: params', () => {
  test('is a built-in rule type with no groups and no recipient count by default', () => {
    assert.ok(BUILTIN_RULE_TYPES.includes(bulkSender as never));
    assert.deepEqual(parseParams(bulkSender, {}), { groups: [], minRecipients: 0 });
  });

  test('a negative or fractional minRecipients is refused', () => {
    assert.throws(() => parseParams(bulkSender, { minRecipients: -1 }), /minRecipients/);
    assert.throws(() => parseParams(bulkSender, { minRecipients: 2.5 }), /minRecipients/);
  });
});
