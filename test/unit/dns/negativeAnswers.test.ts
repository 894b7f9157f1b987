import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createPacketResolver } from '../../../src/dns/packetResolver.js';
import { responseTo, startScriptedDnsServer, type Responder, type ScriptedDnsServer } from './scriptedDnsServer.js';

const NXDOMAIN = 3;

function soa(ttl: number, minimum: number) {
  return { type: 'SOA' as const, name: 'zone.test', ttl, data: { mname: 'ns.zone.test', rname: 'hostmaster.zone.test', serial: 1, refresh: 3600, retry: 600, expire: 86400, minimum } };
}

describe('negative answers and how long they hold (RFC 2308)', () => {
  let respond: Responder = () => undefined;
  let dns: ScriptedDnsServer;
  before(async () => {
    dns = await startScriptedDnsServer((query, reply, transport) => respond(query, reply, transport));
  });
  after(() => dns.close());
  const resolver = () => createPacketResolver({ servers: [dns.server], timeoutMs: 2000, tries: 1 });

  test('NXDOMAIN is ENOTFOUND, held for the SOA MINIMUM when that is lower than the SOA TTL', async () => {
    respond = (query, reply) => reply(responseTo(query, { rcode: NXDOMAIN, authorities: [soa(900, 120)] }));
    await assert.rejects(resolver()('missing.zone.test', 'MX'), { code: 'ENOTFOUND', message: 'queryMx ENOTFOUND missing.zone.test', negativeTtlSeconds: 120 });
  });

  test('NODATA is ENODATA, held for the SOA TTL when that is lower than its MINIMUM', async () => {
    respond = (query, reply) => reply(responseTo(query, { authorities: [soa(45, 3600)] }));
    await assert.rejects(resolver()('host.zone.test', 'TXT'), { code: 'ENODATA', message: 'queryTxt ENODATA host.zone.test', negativeTtlSeconds: 45 });
  });

  test('a negative answer without an SOA says nothing about how long it holds', async () => {
    respond = (query, reply) => reply(responseTo(query, { rcode: NXDOMAIN }));
    const failure = await resolver()('missing.zone.test', 'A').then(
      () => assert.fail('expected ENOTFOUND'),
      (error: unknown) => error as { code: string; negativeTtlSeconds?: number },
    );
    assert.equal(failure.code, 'ENOTFOUND');
    assert.equal(failure.negativeTtlSeconds, undefined);
  });

  test('an answer holding only records of other types is NODATA', async () => {
    respond = (query, reply) => reply(responseTo(query, { answers: [{ type: 'A', name: 'host.zone.test', ttl: 60, data: '192.0.2.1' }], authorities: [soa(300, 300)] }));
    await assert.rejects(resolver()('host.zone.test', 'MX'), { code: 'ENODATA', negativeTtlSeconds: 300 });
  });
});
