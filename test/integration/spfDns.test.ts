import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createNodeResolver } from '../../src/dns/nodeResolver.js';
import type { PolicyContext, Rule } from '../../src/policy/types.js';
import spf from '../../src/rules/spf.js';
import { ManualClock } from '../../src/util/clock.js';
import { silentLogger } from '../../src/util/logger.js';
import { startDnsServer, type DnsServer } from '../helpers/dnsServer.js';
import { parseParams } from '../unit/rules/context.js';

/**
 * The spf rule against a real DNS server: dnsmasq on loopback serving a test zone, queried
 * through the same Node resolver the gateway uses, so record parsing, NXDOMAIN / NODATA and
 * refusals come over the wire as in production.
 */

const EGRESS_V4 = '192.0.2.10';
const EGRESS_V6 = '2001:db8:25::10';

let dnsServer: DnsServer;

before(async () => {
  dnsServer = await startDnsServer({
    zone: 'spf.test',
    txt: {
      'pass.spf.test': ['v=spf1 ip4:192.0.2.10 -all'],
      'include.spf.test': ['v=spf1 include:_spf.provider.spf.test -all'],
      '_spf.provider.spf.test': ['v=spf1 a:out.provider.spf.test -all'],
      'fail.spf.test': ['v=spf1 ip4:198.51.100.1 -all'],
      'softfail.spf.test': ['v=spf1 ip4:198.51.100.1 ~all'],
      'v6.spf.test': ['v=spf1 ip6:2001:db8:25::/48 -all'],
      'split.spf.test': [['v=spf1 ip4:192.0.2.0/24 ', 'ip6:2001:db8::/32 -all']],
      'broken.spf.test': ['v=spf1 ip4:192.0.2.10 -all', 'v=spf1 -all'],
    },
    hosts: {
      'out.provider.spf.test': [EGRESS_V4, EGRESS_V6],
      'nospf.spf.test': ['192.0.2.80'],
    },
  });
});

after(async () => {
  await dnsServer?.stop();
});

function spfRule(params: Record<string, unknown> = {}): Rule {
  return spf.create(parseParams(spf, { egress: [EGRESS_V4], ...params }), {
    clock: new ManualClock(),
    logger: silentLogger(),
    resolver: createNodeResolver({ servers: [dnsServer.server], timeoutMs: 2000 }),
    limiter: {
      consume: async () => {
        throw new Error('the spf rule does not count');
      },
    },
  });
}

function mailFrom(sender: string): PolicyContext {
  return {
    stage: 'mail',
    sessionId: 'spf-dns',
    client: { address: '203.0.113.5', port: 50000 },
    listener: 'submission',
    helo: 'client.example.com',
    envelope: { sender, recipients: [] },
    deadline: Date.now() + 10_000,
  };
}

describe('spf against a DNS server on loopback', () => {
  test('an egress address listed with ip4: passes', async () => {
    assert.equal((await spfRule().evaluate(mailFrom('alice@pass.spf.test'))).action, 'continue');
  });

  test('an egress address authorised through include: and a: passes, for IPv4 and IPv6', async () => {
    assert.equal((await spfRule().evaluate(mailFrom('alice@include.spf.test'))).action, 'continue');
    assert.equal((await spfRule({ egress: [EGRESS_V6] }).evaluate(mailFrom('alice@include.spf.test'))).action, 'continue');
  });

  test('a record split into several strings is read as one', async () => {
    assert.equal((await spfRule({ egress: [EGRESS_V4, EGRESS_V6] }).evaluate(mailFrom('alice@split.spf.test'))).action, 'continue');
  });

  test('an egress address the record fails is rejected with 550 5.7.23', async () => {
    assert.deepEqual(await spfRule().evaluate(mailFrom('alice@Fail.SPF.test')), {
      action: 'reject',
      code: 550,
      enhanced: '5.7.23',
      text: 'fail.spf.test does not authorise 192.0.2.10 to send its mail (SPF fail); ask its administrator to add it to the SPF record',
    });
  });

  test('an IPv6 egress address outside the ip6: network fails', async () => {
    assert.equal((await spfRule({ egress: [EGRESS_V6] }).evaluate(mailFrom('alice@v6.spf.test'))).action, 'continue');
    const verdict = await spfRule({ egress: ['2001:db8:99::1'] }).evaluate(mailFrom('alice@v6.spf.test'));
    assert.ok(verdict.action === 'reject' && verdict.enhanced === '5.7.23');
  });

  test('a softfail continues unless onSoftFail is reject', async () => {
    assert.equal((await spfRule().evaluate(mailFrom('alice@softfail.spf.test'))).action, 'continue');
    assert.equal((await spfRule({ onSoftFail: 'reject' }).evaluate(mailFrom('alice@softfail.spf.test'))).action, 'reject');
  });

  test('a name without TXT records and a name that does not exist have no SPF record', async () => {
    assert.equal((await spfRule().evaluate(mailFrom('alice@nospf.spf.test'))).action, 'continue');
    assert.equal((await spfRule().evaluate(mailFrom('alice@missing.spf.test'))).action, 'continue');
    const verdict = await spfRule({ onNone: 'reject' }).evaluate(mailFrom('alice@nospf.spf.test'));
    assert.ok(verdict.action === 'reject' && verdict.text.includes('(SPF none)'));
  });

  test('two SPF records are a permanent error: 550 5.7.24', async () => {
    assert.deepEqual(await spfRule().evaluate(mailFrom('alice@broken.spf.test')), {
      action: 'reject',
      code: 550,
      enhanced: '5.7.24',
      text: 'the SPF record of broken.spf.test is broken: multiple SPF records found for broken.spf.test',
    });
  });

  test('a server that refuses the query is a temporary error: 451 4.7.24', async () => {
    // dnsmasq answers REFUSED for names outside its zone (it has no upstream to ask).
    assert.deepEqual(await spfRule().evaluate(mailFrom('alice@elsewhere.example')), {
      action: 'defer',
      code: 451,
      enhanced: '4.7.24',
      text: 'the SPF record of elsewhere.example could not be checked (DNS lookup failed); try again later',
    });
  });
});
