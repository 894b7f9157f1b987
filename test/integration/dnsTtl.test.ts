import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { promises as dns } from 'node:dns';
import { after, before, describe, test } from 'node:test';
import { createResolver } from '../../src/dns/resolver.js';
import { ManualClock } from '../../src/util/clock.js';
import { startDnsServer, type DnsServer, type TestZone } from '../helpers/dnsServer.js';

/**
 * The gateway's resolver against a real DNS server: dnsmasq on loopback. Answers must come back
 * exactly as node:dns gives them for the same server, and be kept for the TTL the server sent,
 * checked by stopping the server: an answer still inside its TTL is served from the cache, one
 * past it is asked again and fails.
 */

const DKIM_KEY = `v=DKIM1; k=rsa; p=${'MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA'.repeat(8)}`;

const ZONE: TestZone = {
  zone: 'ttl.test',
  ttl: 30,
  hosts: { 'host.ttl.test': ['192.0.2.10', '2001:db8::10'], 'mx1.ttl.test': ['192.0.2.25'] },
  mx: { 'ttl.test': [{ preference: 20, exchange: 'mx2.ttl.test' }, { preference: 10, exchange: 'mx1.ttl.test' }] },
  nullMx: ['nomail.ttl.test'],
  cname: { 'www.ttl.test': 'host.ttl.test' },
  txt: {
    'ttl.test': ['v=spf1 ip4:192.0.2.0/24 -all', ['first part, with a comma', ' second part']],
    // Longer than one 255-octet character string: published as two strings.
    'sel._domainkey.ttl.test': [[DKIM_KEY.slice(0, 255), DKIM_KEY.slice(255)]],
    // Over the 1232-byte EDNS0 buffer: dnsmasq truncates it over UDP and it comes over TCP.
    'big.ttl.test': Array.from({ length: 16 }, (_, i) => `record ${i} ${'x'.repeat(120)}`),
  },
};

/** node:dns's own answer (or error code) for the question, from the same server. */
async function nodeAnswer(server: string, name: string, rrtype: string): Promise<unknown> {
  const resolver = new dns.Resolver({ timeout: 2000, tries: 1 });
  resolver.setServers([server]);
  return resolver.resolve(name, rrtype).catch((error: { code?: string }) => ({ code: error.code }));
}

async function codeOf(promise: Promise<unknown>): Promise<string | undefined> {
  return promise.then(
    () => undefined,
    (error: { code?: string }) => error.code,
  );
}

describe('answers over the wire, in node:dns shapes', () => {
  let server: DnsServer;
  before(async () => {
    server = await startDnsServer(ZONE);
  });
  after(() => server?.stop());

  const questions: Array<[string, string]> = [
    ['host.ttl.test', 'A'],
    ['host.ttl.test', 'AAAA'],
    ['ttl.test', 'MX'],
    ['nomail.ttl.test', 'MX'],
    ['ttl.test', 'TXT'],
    ['sel._domainkey.ttl.test', 'TXT'],
    ['big.ttl.test', 'TXT'],
    ['www.ttl.test', 'A'],
    ['www.ttl.test', 'CNAME'],
    ['missing.ttl.test', 'A'],
    ['host.ttl.test', 'MX'],
    ['outside.example', 'TXT'],
  ];
  for (const [name, rrtype] of questions) {
    test(`${rrtype} ${name} is answered as node:dns answers it`, async () => {
      const resolve = createResolver({ servers: [server.server], clock: new ManualClock(), timeoutMs: 2000, tries: 1 });
      const ours = await resolve(name, rrtype).catch((error: { code?: string }) => ({ code: error.code }));
      assert.deepEqual(ours, await nodeAnswer(server.server, name, rrtype));
    });
  }

  test('records are what the zone publishes: a multi-string TXT record, a long DKIM key, every record of a large answer', async () => {
    const resolve = createResolver({ servers: [server.server], clock: new ManualClock(), timeoutMs: 2000, tries: 1 });
    const spf = (await resolve('ttl.test', 'TXT')) as string[][];
    assert.deepEqual(new Set(spf.map((strings) => JSON.stringify(strings))), new Set([JSON.stringify(['v=spf1 ip4:192.0.2.0/24 -all']), JSON.stringify(['first part, with a comma', ' second part'])]));
    assert.deepEqual(((await resolve('sel._domainkey.ttl.test', 'TXT')) as string[][]).map((strings) => strings.join('')), [DKIM_KEY]);
    assert.equal(((await resolve('big.ttl.test', 'TXT')) as string[][]).length, 16);
    assert.deepEqual(await resolve('www.ttl.test', 'A'), ['192.0.2.10']);
  });
});

describe('answers are kept for the TTL the server sent', () => {
  test('records until their TTL passes; a negative answer without SOA for a minute', async () => {
    const server = await startDnsServer(ZONE);
    const clock = new ManualClock();
    const resolve = createResolver({ servers: [server.server], clock, timeoutMs: 1000, tries: 1 });
    try {
      const records = await resolve('ttl.test', 'MX');
      assert.equal(await codeOf(resolve('missing.ttl.test', 'A')), 'ENOTFOUND');
      assert.equal(await codeOf(resolve('host.ttl.test', 'MX')), 'ENODATA');
      await server.stop();

      clock.advance(30_000 - 1);
      assert.deepEqual(await resolve('ttl.test', 'MX'), records, 'served from the cache inside the TTL');
      clock.advance(1);
      assert.equal(await codeOf(resolve('ttl.test', 'MX')), 'ECONNREFUSED', 'asked again once the TTL has passed');

      clock.advance(60_000 - 30_000 - 1);
      assert.equal(await codeOf(resolve('missing.ttl.test', 'A')), 'ENOTFOUND');
      assert.equal(await codeOf(resolve('host.ttl.test', 'MX')), 'ENODATA');
      clock.advance(1);
      assert.equal(await codeOf(resolve('missing.ttl.test', 'A')), 'ECONNREFUSED');
      assert.equal(await codeOf(resolve('host.ttl.test', 'MX')), 'ECONNREFUSED');
    } finally {
      await server.stop();
    }
  });

  test("NXDOMAIN and NODATA are kept for the TTL of the zone's SOA (RFC 2308)", async () => {
    const server = await startDnsServer({ zone: 'auth.test', authoritativeTtl: 20, hosts: { 'host.auth.test': ['192.0.2.20'] } });
    const clock = new ManualClock();
    const resolve = createResolver({ servers: [server.server], clock, timeoutMs: 1000, tries: 1 });
    try {
      assert.equal(await codeOf(resolve('missing.auth.test', 'A')), 'ENOTFOUND');
      assert.equal(await codeOf(resolve('host.auth.test', 'TXT')), 'ENODATA');
      await server.stop();

      clock.advance(20_000 - 1);
      assert.equal(await codeOf(resolve('missing.auth.test', 'A')), 'ENOTFOUND');
      assert.equal(await codeOf(resolve('host.auth.test', 'TXT')), 'ENODATA');
      clock.advance(1);
      assert.equal(await codeOf(resolve('missing.auth.test', 'A')), 'ECONNREFUSED');
      assert.equal(await codeOf(resolve('host.auth.test', 'TXT')), 'ECONNREFUSED');
    } finally {
      await server.stop();
    }
  });

  test('a REFUSED answer is not kept: the next question asks again', async () => {
    const server = await startDnsServer(ZONE);
    const resolve = createResolver({ servers: [server.server], clock: new ManualClock(), timeoutMs: 1000, tries: 1 });
    try {
      assert.equal(await codeOf(resolve('outside.example', 'TXT')), 'EREFUSED');
      await server.stop();
      assert.equal(await codeOf(resolve('outside.example', 'TXT')), 'ECONNREFUSED');
    } finally {
      await server.stop();
    }
  });
});

describe('a server that does not answer', () => {
  test('is ETIMEOUT, and the timeout is not kept', async () => {
    const silent = createSocket('udp4');
    let received = 0;
    silent.on('message', () => (received += 1));
    await new Promise<void>((resolve) => silent.bind(0, '127.0.0.1', () => resolve()));
    try {
      const resolve = createResolver({ servers: [`127.0.0.1:${silent.address().port}`], clock: new ManualClock(), timeoutMs: 200, tries: 1 });
      assert.equal(await codeOf(resolve('host.ttl.test', 'A')), 'ETIMEOUT');
      assert.equal(await codeOf(resolve('host.ttl.test', 'A')), 'ETIMEOUT');
      assert.equal(received, 2);
    } finally {
      await new Promise<void>((resolve) => silent.close(() => resolve()));
    }
  });
});
