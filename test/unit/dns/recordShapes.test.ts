import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Answer } from 'dns-packet';
import { createPacketResolver } from '../../../src/dns/packetResolver.js';
import { responseTo, startScriptedDnsServer, type ScriptedDnsServer } from './scriptedDnsServer.js';

/** What the server holds, by type, for the name "r.test". */
const ZONE: Record<string, Answer[]> = {
  MX: [
    { type: 'MX', name: 'r.test', ttl: 60, data: { preference: 10, exchange: 'mx1.r.test' } },
    { type: 'MX', name: 'r.test', ttl: 60, data: { preference: 0, exchange: '.' } },
  ],
  SRV: [{ type: 'SRV', name: 'r.test', ttl: 60, data: { priority: 1, weight: 5, port: 465, target: 'smtp.r.test' } }],
  SOA: [{ type: 'SOA', name: 'r.test', ttl: 60, data: { mname: 'ns.r.test', rname: 'hostmaster.r.test', serial: 7, refresh: 3600, retry: 600, expire: 86400, minimum: 300 } }],
  CAA: [{ type: 'CAA', name: 'r.test', ttl: 60, data: { flags: 0, tag: 'issue', value: 'ca.example' } }],
  NAPTR: [{ type: 'NAPTR', name: 'r.test', ttl: 60, data: { order: 10, preference: 20, flags: 's', services: 'SIP+D2U', regexp: '', replacement: '_sip._udp.r.test' } }],
  NS: [{ type: 'NS', name: 'r.test', ttl: 60, data: 'ns.r.test' }],
  PTR: [{ type: 'PTR', name: 'r.test', ttl: 60, data: 'host.r.test' }],
  AAAA: [{ type: 'AAAA', name: 'r.test', ttl: 60, data: '2001:db8::1' }],
  TXT: [{ type: 'TXT', name: 'r.test', ttl: 60, data: [Buffer.from('v=spf1 '), Buffer.from([0x63, 0x61, 0x66, 0xc3, 0xa9])] }],
};

describe('records come back in the shapes node:dns gives', () => {
  let dns: ScriptedDnsServer;
  before(async () => {
    dns = await startScriptedDnsServer((query, reply) => reply(responseTo(query, { answers: ZONE[query.questions?.[0]?.type ?? ''] ?? [] })));
  });
  after(() => dns.close());
  const ask = async (rrtype: string) => (await createPacketResolver({ servers: [dns.server], timeoutMs: 2000, tries: 1 })('r.test', rrtype)).records;

  test('MX as exchange and priority, the null MX exchange as an empty name', async () => {
    assert.deepEqual(await ask('MX'), [
      { exchange: 'mx1.r.test', priority: 10 },
      { exchange: '', priority: 0 },
    ]);
  });

  test('SRV, SOA, CAA and NAPTR with node:dns field names, SOA as one object', async () => {
    assert.deepEqual(await ask('SRV'), [{ name: 'smtp.r.test', port: 465, priority: 1, weight: 5 }]);
    assert.deepEqual(await ask('SOA'), { nsname: 'ns.r.test', hostmaster: 'hostmaster.r.test', serial: 7, refresh: 3600, retry: 600, expire: 86400, minttl: 300 });
    assert.deepEqual(await ask('CAA'), [{ critical: 0, issue: 'ca.example' }]);
    assert.deepEqual(await ask('NAPTR'), [{ flags: 's', service: 'SIP+D2U', regexp: '', replacement: '_sip._udp.r.test', order: 10, preference: 20 }]);
  });

  test('NS, PTR and AAAA as strings', async () => {
    assert.deepEqual(await ask('NS'), ['ns.r.test']);
    assert.deepEqual(await ask('PTR'), ['host.r.test']);
    assert.deepEqual(await ask('AAAA'), ['2001:db8::1']);
  });

  test("TXT as the record's character strings, each octet one character as node:dns decodes them", async () => {
    assert.deepEqual(await ask('TXT'), [['v=spf1 ', 'caf\u00c3\u00a9']]);
  });

  test('the record type may be written in any case', async () => {
    assert.deepEqual(await ask('ns'), ['ns.r.test']);
  });
});
