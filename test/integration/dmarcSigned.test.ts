import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { keyDirectory, newKeyPem, publishedRecord, writeKeyFile } from '../helpers/dkimFixtures.js';
import { verifyWithDkimpy } from '../helpers/dkimVerifier.js';
import { startDnsServer, type DnsServer } from '../helpers/dnsServer.js';
import { ALICE, startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { authenticatedClient, type Reply } from '../helpers/smtpClient.js';
import { startUpstream, type ReceivedMessage, type Upstream } from '../helpers/upstream.js';

/**
 * dmarc and bulk-sender in a running gateway where DKIM alignment comes from Postern's own
 * signature: `dkim.keys` holds a key for example.com, the rules learn from the signer which d=
 * a From domain will be signed with, and the SMTP side signs the accepted message before it is
 * queued. What arrives upstream is checked with python3-dkim against the published key.
 *
 * No `egressIps` are set, and every envelope sender is outside the From domain, so SPF never
 * aligns: whatever passes DMARC here passes it by Postern's DKIM signature (RFC 7489 3.1.1).
 *
 * Two dnsmasq servers answer: one for example.com (the key and the DMARC records), one for
 * example.org (a domain with a DMARC record and no key here). Each refuses the other's names,
 * and the gateway's resolver moves on to the next server when one refuses.
 */

const SELECTOR = 'postern';
const UNALIGNED_SENDER = 'bounces@elsewhere.example';

const SIGNING_POLICY = `rules:
  - name: bulk-requirements
    type: bulk-sender
  - name: dmarc-preflight
    type: dmarc
`;

/** A policy with neither dmarc nor bulk-sender: only a From header is required. */
const PLAIN_POLICY = `rules:
  - name: required-headers
    type: headers
    params: { require: [From] }
`;

const ONE_CLICK_HEADERS = [
  'List-Id: Monthly news <news.example.com>',
  'List-Unsubscribe: <https://example.com/unsubscribe/42>, <mailto:unsubscribe@example.com?subject=42>',
  'List-Unsubscribe-Post: List-Unsubscribe=One-Click',
];

function message(from: string, extra: string[] = []): string {
  return [
    `From: ${from}`,
    'To: Bob <bob@example.net>',
    'Subject: Monthly report',
    'Date: Thu, 01 Jan 2026 00:00:00 +0000',
    `Message-ID: <${Math.random().toString(36).slice(2)}@example.com>`,
    ...extra,
    '',
    'Hello Bob,',
    '',
    'the figures are attached.',
    '',
  ].join('\r\n');
}

/** Every DKIM-Signature field of a message, top first, as its tags (unfolded, white space removed). */
function dkimSignatureTags(raw: Buffer): Array<Map<string, string>> {
  const text = raw.toString('latin1');
  const headerEnd = text.indexOf('\r\n\r\n');
  const header = headerEnd === -1 ? text : text.slice(0, headerEnd);
  // RFC 5322 section 2.2.3: a field continues on lines that start with white space.
  const fields = header.split(/\r\n(?![ \t])/);
  return fields
    .filter((field) => /^dkim-signature\s*:/i.test(field))
    .map((field) => {
      const value = field.slice(field.indexOf(':') + 1).replace(/\s+/g, '');
      const tags = new Map<string, string>();
      for (const pair of value.split(';')) {
        const eq = pair.indexOf('=');
        if (eq > 0) tags.set(pair.slice(0, eq).toLowerCase(), pair.slice(eq + 1));
      }
      return tags;
    });
}

/** The h= list of a signature, lower-cased. */
function signedFieldNames(tags: Map<string, string>): string[] {
  return (tags.get('h') ?? '').split(':').map((name) => name.trim().toLowerCase());
}

describe('dmarc and bulk-sender aligned by the DKIM signature Postern makes', () => {
  const pem = newKeyPem('rsa');
  let keys: { dir: string; remove(): Promise<void> };
  let keyedDns: DnsServer;
  let unkeyedDns: DnsServer;
  let upstream: Upstream;
  let signing: TestGateway;
  let plain: TestGateway;
  const policyDirs: string[] = [];

  async function policyDir(policy: string): Promise<string> {
    const dir = await mkdtemp(join(tmpdir(), 'postern-dmarc-signed-policies-'));
    policyDirs.push(dir);
    await writeFile(join(dir, '50-authentication.yaml'), policy);
    return dir;
  }

  before(async () => {
    keys = await keyDirectory();
    const keyFile = await writeKeyFile(keys.dir, 'example.com.key', pem);
    keyedDns = await startDnsServer({
      zone: 'example.com',
      txt: {
        ...publishedRecord(SELECTOR, 'example.com', pem),
        '_dmarc.example.com': ['v=DMARC1; p=reject'],
        '_dmarc.news.example.com': ['v=DMARC1; p=reject; adkim=r'],
        '_dmarc.alerts.example.com': ['v=DMARC1; p=reject; adkim=s'],
      },
    });
    unkeyedDns = await startDnsServer({ zone: 'example.org', txt: { '_dmarc.example.org': ['v=DMARC1; p=reject'] } });
    upstream = await startUpstream();
    const common = [
      `dkim: { keys: [ { domain: example.com, selector: ${SELECTOR}, keyFile: ${JSON.stringify(keyFile)} } ] }`,
      `dns: { servers: ["${keyedDns.server}", "${unkeyedDns.server}"] }`,
    ];
    signing = await startTestGateway({
      upstreamPort: upstream.port,
      extraYaml: [...common, `policies: { dir: ${JSON.stringify(await policyDir(SIGNING_POLICY))} }`].join('\n'),
    });
    plain = await startTestGateway({
      upstreamPort: upstream.port,
      extraYaml: [...common, `policies: { dir: ${JSON.stringify(await policyDir(PLAIN_POLICY))} }`].join('\n'),
    });
  });

  after(async () => {
    await signing?.dispose();
    await plain?.dispose();
    await upstream?.close();
    await keyedDns?.stop();
    await unkeyedDns?.stop();
    await keys?.remove();
    for (const dir of policyDirs) await rm(dir, { recursive: true, force: true });
  });

  async function send(gateway: TestGateway, raw: string, sender = UNALIGNED_SENDER): Promise<Reply> {
    const client = await authenticatedClient(gateway.submissionPort, ALICE);
    try {
      const mail = await client.command(`MAIL FROM:<${sender}>`);
      assert.equal(mail.code, 250, mail.last);
      const rcpt = await client.command('RCPT TO:<bob@example.net>');
      assert.equal(rcpt.code, 250, rcpt.last);
      return await client.data(raw);
    } finally {
      await client.quit();
    }
  }

  /** Sends, expects 250, and returns the message as the upstream received it. */
  async function relayed(gateway: TestGateway, raw: string): Promise<ReceivedMessage> {
    const before = upstream.messages.length;
    const reply = await send(gateway, raw);
    assert.equal(reply.code, 250, reply.last);
    const [received] = (await upstream.waitFor(before + 1)).slice(before);
    assert.ok(received);
    assert.equal(received.from, UNALIGNED_SENDER);
    return received;
  }

  /** The message carries exactly one signature, of d=`domain`, that python3-dkim verifies against the zone. */
  async function assertSignedAndVerified(received: ReceivedMessage, domain: string): Promise<Map<string, string>> {
    const signatures = dkimSignatureTags(received.raw);
    assert.equal(signatures.length, 1, received.raw.toString('latin1'));
    const tags = signatures[0]!;
    assert.equal(tags.get('d'), domain);
    assert.equal(tags.get('s'), SELECTOR);
    const verdicts = await verifyWithDkimpy(received.raw, keyedDns);
    assert.deepEqual(
      verdicts.map((v) => [v.domain, v.selector, v.valid]),
      [[domain, SELECTOR, true]],
      JSON.stringify(verdicts),
    );
    return tags;
  }

  test('a From domain with a DMARC record and a key here is relayed with an unaligned envelope sender, signed as the From domain', async () => {
    const text = message('Alice <alice@example.com>');
    const received = await relayed(signing, text);
    await assertSignedAndVerified(received, 'example.com');
    assert.ok(received.raw.toString('latin1').endsWith(text), 'the message itself arrives as submitted, below the added fields');
  });

  test("a subdomain From under adkim=r is relayed, signed with the parent domain's key", async () => {
    const received = await relayed(signing, message('News <news@news.example.com>'));
    await assertSignedAndVerified(received, 'example.com');
  });

  test("a subdomain From under adkim=s is refused with 550 5.7.26: the parent domain's signature is not strictly aligned", async () => {
    const before = upstream.messages.length;
    const reply = await send(signing, message('Alerts <alerts@alerts.example.com>'));
    assert.equal(
      reply.last,
      '550 5.7.26 mail From alerts.example.com would not align: the DKIM key here signs as example.com, which is not strictly aligned ' +
        `and the envelope sender ${UNALIGNED_SENDER} is not aligned`,
    );
    assert.equal(upstream.messages.length, before, 'nothing was relayed');
  });

  test('bulk mail with one-click unsubscribe and a key here is relayed, its signature covering both List-Unsubscribe fields', async () => {
    const received = await relayed(signing, message('News <news@example.com>', ONE_CLICK_HEADERS));
    const tags = await assertSignedAndVerified(received, 'example.com');
    const signed = signedFieldNames(tags);
    // RFC 8058 section 4: both fields must be covered by a DKIM signature the receiver trusts.
    for (const name of ['list-unsubscribe', 'list-unsubscribe-post', 'list-id', 'from']) {
      assert.ok(signed.includes(name), `h= names ${name}: ${tags.get('h')}`);
    }
  });

  test('bulk mail From a domain with a DMARC record but no key here is refused, naming the missing aligned DKIM signature', async () => {
    const before = upstream.messages.length;
    const reply = await send(signing, message('News <news@example.org>', ONE_CLICK_HEADERS));
    assert.equal(reply.last, '550 5.7.1 bulk mail from example.org must have: a DKIM signature aligned with the From domain');
    assert.equal(upstream.messages.length, before, 'nothing was relayed');
  });

  test('without a dmarc rule, mail From a domain with no key and no DMARC record is relayed as submitted and unsigned', async () => {
    const text = message('Carol <carol@unsigned.example>');
    const received = await relayed(plain, text);
    const raw = received.raw.toString('latin1');
    assert.doesNotMatch(raw, /^DKIM-Signature:/im);
    assert.deepEqual(await verifyWithDkimpy(received.raw, keyedDns), []);
    assert.ok(raw.endsWith(text), 'the message itself arrives as submitted');
    // Only the trace field is added in front (RFC 5321 section 4.4).
    assert.match(raw.slice(0, raw.length - text.length), /^Received: [^]*\r\n$/);
    assert.doesNotMatch(raw.slice(0, raw.length - text.length), /\r\n(?![ \t])(?!$)/, 'one field (Received) in front of the message');
  });

  test('the same gateway signs a From domain it has a key for: unsigned mail above is for want of a key', async () => {
    const received = await relayed(plain, message('Alice <alice@example.com>'));
    await assertSignedAndVerified(received, 'example.com');
  });
});
