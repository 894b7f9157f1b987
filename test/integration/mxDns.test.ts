import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { lookupMx } from '../../src/delivery/mxLookup.js';
import { createNodeResolver } from '../../src/dns/nodeResolver.js';
import type { DnsResolver } from '../../src/policy/types.js';
import { startDnsServer, type DnsServer } from '../helpers/dnsServer.js';

/**
 * MX lookups against a real DNS server: dnsmasq on loopback serving a test zone, queried
 * through the Node resolver the gateway uses, so MX answers, the null MX's root exchange,
 * NXDOMAIN and NODATA come over the wire as in production.
 */

let dnsServer: DnsServer;
let resolver: DnsResolver;

before(async () => {
  dnsServer = await startDnsServer({
    zone: 'mx.test',
    mx: {
      // Listed backup first: the order must come from the preferences, not the answer.
      'two.mx.test': [
        { preference: 20, exchange: 'backup.mx.test' },
        { preference: 10, exchange: 'primary.mx.test' },
      ],
      'mixed.mx.test': [{ preference: 10, exchange: 'primary.mx.test' }],
      'dangling.mx.test': [{ preference: 10, exchange: 'nowhere.mx.test' }],
    },
    nullMx: ['nomail.mx.test', 'mixed.mx.test'],
    hosts: {
      'primary.mx.test': ['127.0.0.2'],
      'backup.mx.test': ['127.0.0.3'],
      'plain.mx.test': ['127.0.0.4', '::1'],
    },
  });
  resolver = createNodeResolver({ servers: [dnsServer.server], timeoutMs: 2000 });
});

after(async () => {
  await dnsServer?.stop();
});

describe('MX lookups over DNS', () => {
  test('two MX hosts come back lowest preference first, at their addresses', async () => {
    const result = await lookupMx('two.mx.test', { resolver });
    assert.deepEqual(result, {
      ok: true,
      hosts: [
        { name: 'primary.mx.test', preference: 10, addresses: ['127.0.0.2'], implicit: false },
        { name: 'backup.mx.test', preference: 20, addresses: ['127.0.0.3'], implicit: false },
      ],
    });
  });

  test('a domain without MX records is delivered to at its own A and AAAA addresses', async () => {
    const result = await lookupMx('plain.mx.test', { resolver });
    assert.deepEqual(result, { ok: true, hosts: [{ name: 'plain.mx.test', preference: 0, addresses: ['127.0.0.4', '::1'], implicit: true }] });
  });

  test('a domain publishing the null MX accepts no mail: permanent 5.1.10', async () => {
    const result = await lookupMx('nomail.mx.test', { resolver });
    assert.deepEqual(result, { ok: false, permanent: true, enhancedCode: '5.1.10', reply: 'nomail.mx.test: domain accepts no mail (null MX, RFC 7505)' });
  });

  test('a null MX beside a real MX is ignored', async () => {
    const result = await lookupMx('mixed.mx.test', { resolver });
    assert.ok(result.ok, JSON.stringify(result));
    assert.deepEqual(result.hosts.map((host) => host.name), ['primary.mx.test']);
  });

  test('a domain that does not exist fails for good with 5.1.2', async () => {
    const result = await lookupMx('absent.mx.test', { resolver });
    assert.deepEqual(result, { ok: false, permanent: true, enhancedCode: '5.1.2', reply: 'absent.mx.test: domain does not exist (NXDOMAIN)' });
  });

  test('an MX host that does not resolve leaves the domain unroutable: permanent 5.4.4', async () => {
    const result = await lookupMx('dangling.mx.test', { resolver });
    assert.ok(!result.ok, JSON.stringify(result));
    assert.equal(result.permanent, true);
    assert.equal(result.enhancedCode, '5.4.4');
    assert.match(result.reply, /nowhere\.mx\.test does not exist/);
  });
});
