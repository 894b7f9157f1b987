import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { startDnsServer, type DnsServer } from '../helpers/dnsServer.js';
import { ALICE, startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { authenticatedClient } from '../helpers/smtpClient.js';
import { startUpstream, type Upstream } from '../helpers/upstream.js';
import { rsaKey, signMessage } from '../unit/rules/dkimFixtures.js';

/**
 * dkim-verify, dmarc and bulk-sender in a running gateway: real SMTP sessions, the policy
 * loaded from a directory, and every DNS question answered by dnsmasq on loopback through the
 * resolver the gateway builds from `dns.servers`. Postern signs nothing here (no dkim.keys),
 * so messages align by SPF of the egress address, or by the client's own signature.
 *
 * In the zone, dmarc.test is the organizational domain of every name below it (the public
 * suffix list knows no "test"), so an envelope sender that must not align is kept outside it.
 */

const EGRESS = '192.0.2.10';
const clientKey = rsaKey('client.dmarc.test', 'sel');

const POLICY = `rules:
  - name: signatures-verify
    type: dkim-verify
  - name: dmarc-preflight
    type: dmarc
    params: { egressIps: [${EGRESS}] }
  - name: bulk-requirements
    type: bulk-sender
`;

function message(from: string, extra: string[] = [], body = 'Hello Bob.'): string {
  return [
    `From: ${from}`,
    'To: Bob <bob@example.net>',
    'Subject: Monthly report',
    'Date: Thu, 01 Jan 2026 00:00:00 +0000',
    `Message-ID: <${Math.random().toString(36).slice(2)}@dmarc.test>`,
    ...extra,
    '',
    body,
    '',
  ].join('\r\n');
}

const BULK_HEADERS = [
  'Precedence: bulk',
  'List-Unsubscribe: <https://client.dmarc.test/unsubscribe/42>',
  'List-Unsubscribe-Post: List-Unsubscribe=One-Click',
];

describe('dkim-verify, dmarc and bulk-sender through real SMTP sessions', () => {
  let dns: DnsServer;
  let upstream: Upstream;
  let postern: TestGateway;
  let policies: string;

  before(async () => {
    dns = await startDnsServer({
      zone: 'dmarc.test',
      txt: {
        '_dmarc.good.dmarc.test': ['v=DMARC1; p=reject'],
        'good.dmarc.test': [`v=spf1 ip4:${EGRESS} -all`],
        '_dmarc.fail.dmarc.test': ['v=DMARC1; p=quarantine'],
        'fail.dmarc.test': ['v=spf1 ip4:198.51.100.1 -all'],
        'nodmarc.dmarc.test': [`v=spf1 ip4:${EGRESS} -all`],
        '_dmarc.client.dmarc.test': ['v=DMARC1; p=reject; adkim=s'],
        [clientKey.name]: clientKey.txt,
      },
    });
    policies = await mkdtemp(join(tmpdir(), 'postern-dmarc-policies-'));
    await writeFile(join(policies, '50-authentication.yaml'), POLICY);
    upstream = await startUpstream();
    postern = await startTestGateway({
      upstreamPort: upstream.port,
      extraYaml: `policies: { dir: ${JSON.stringify(policies)} }\ndns: { servers: ["${dns.server}"] }`,
    });
  });

  after(async () => {
    await postern?.dispose();
    await upstream?.close();
    await dns?.stop();
    await rm(policies, { recursive: true, force: true });
  });

  async function send(sender: string, raw: string) {
    const client = await authenticatedClient(postern.submissionPort, ALICE);
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

  test('an aligned envelope sender whose SPF passes for the egress address is relayed', async () => {
    const before = upstream.messages.length;
    const reply = await send('bounces@good.dmarc.test', message('Alice <alice@good.dmarc.test>'));
    assert.equal(reply.code, 250, reply.last);
    const [received] = (await upstream.waitFor(before + 1)).slice(before);
    assert.equal(received?.from, 'bounces@good.dmarc.test');
  });

  test('a From domain without a DMARC record is refused with 550 5.7.1', async () => {
    const reply = await send('bounces@nodmarc.dmarc.test', message('alice@nodmarc.dmarc.test'));
    assert.equal(reply.last, '550 5.7.1 nodmarc.dmarc.test publishes no DMARC record (a TXT record at _dmarc.nodmarc.dmarc.test)');
  });

  test('an envelope sender of another domain is refused with 550 5.7.26 naming what is missing', async () => {
    const reply = await send('bounces@elsewhere.example', message('alice@good.dmarc.test'));
    assert.equal(
      reply.last,
      '550 5.7.26 mail From good.dmarc.test would not align: no DKIM key for good.dmarc.test here and the envelope sender bounces@elsewhere.example is not aligned',
    );
  });

  test('an aligned envelope sender whose SPF fails for the egress address is refused', async () => {
    const reply = await send('bounces@fail.dmarc.test', message('alice@fail.dmarc.test'));
    assert.equal(
      reply.last,
      '550 5.7.26 mail From fail.dmarc.test would not align: no DKIM key for fail.dmarc.test here and fail.dmarc.test does not authorise 192.0.2.10 (SPF fail)',
    );
  });

  test('a From domain whose DMARC look-up the DNS server refuses is deferred with 451 4.4.3', async () => {
    // dnsmasq answers REFUSED outside its zone: a look-up that may work next time.
    const reply = await send('bounces@elsewhere.example', message('alice@elsewhere.example'));
    assert.equal(reply.last, '451 4.4.3 the DMARC record of elsewhere.example could not be looked up (DNS lookup failed); try again later');
  });

  test("a message carrying the client's valid signature aligns by DKIM with any envelope sender", async () => {
    const before = upstream.messages.length;
    const raw = await signMessage(message('news@client.dmarc.test'), [clientKey], { at: Date.now() });
    const reply = await send('bounces@elsewhere.example', raw);
    assert.equal(reply.code, 250, reply.last);
    const [received] = (await upstream.waitFor(before + 1)).slice(before);
    assert.ok(received?.raw.toString('latin1').includes('d=client.dmarc.test'));
  });

  test('a signed message changed after signing is refused by dkim-verify with 550 5.7.20', async () => {
    const raw = (await signMessage(message('news@client.dmarc.test'), [clientKey], { at: Date.now() })).replace('Hello Bob.', 'Hello Mallory.');
    const reply = await send('bounces@elsewhere.example', raw);
    assert.equal(reply.last, '550 5.7.20 the DKIM signature of client.dmarc.test does not verify: body hash did not verify');
  });

  test('bulk mail without one-click unsubscribe is refused with every missing item in one reply', async () => {
    const reply = await send('bounces@good.dmarc.test', message('alice@good.dmarc.test', ['Precedence: bulk']));
    assert.equal(
      reply.last,
      '550 5.7.1 bulk mail from good.dmarc.test must have: a List-Unsubscribe header with an https: URI; ' +
        'List-Unsubscribe-Post: List-Unsubscribe=One-Click (RFC 8058); a DKIM signature aligned with the From domain',
    );
  });

  test('bulk mail with one-click unsubscribe, an aligned signature and a DMARC record is relayed', async () => {
    const before = upstream.messages.length;
    const raw = await signMessage(message('news@client.dmarc.test', BULK_HEADERS), [clientKey], { at: Date.now() });
    const reply = await send('bounces@client.dmarc.test', raw);
    assert.equal(reply.code, 250, reply.last);
    await upstream.waitFor(before + 1);
  });
});
