import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import dnsPacket from 'dns-packet';
import { createPacketResolver } from '../../../src/dns/packetResolver.js';
import { responseTo, startScriptedDnsServer, type Responder, type ScriptedDnsServer } from './scriptedDnsServer.js';

const FORMERR = 1;

describe('truncated answers and servers without EDNS0', () => {
  let respond: Responder = () => undefined;
  let dns: ScriptedDnsServer;
  before(async () => {
    dns = await startScriptedDnsServer((query, reply, transport) => respond(query, reply, transport));
  });
  after(() => dns.close());
  const resolver = () => createPacketResolver({ servers: [dns.server], timeoutMs: 2000, tries: 1 });

  test('a truncated UDP answer is asked again over TCP and the TCP answer is used (RFC 7766)', async () => {
    const records = Array.from({ length: 20 }, (_, i) => ({ type: 'TXT' as const, name: 'big.test', ttl: 120, data: [`record ${i} ${'x'.repeat(200)}`] }));
    respond = (query, reply, transport) => {
      if (transport === 'udp') reply(responseTo(query, { flags: dnsPacket.TRUNCATED_RESPONSE, answers: records.slice(0, 1) }));
      else reply(responseTo(query, { answers: records }));
    };
    const asked = dns.queries.length;
    const answer = await resolver()('big.test', 'TXT');
    assert.equal((answer.records as string[][]).length, 20);
    assert.equal(answer.ttlSeconds, 120);
    assert.deepEqual(dns.queries.slice(asked).map((query) => query.transport), ['udp', 'tcp']);
  });

  test('a TCP response that does not answer the query is EBADRESP', async () => {
    respond = (query, reply, transport) => {
      if (transport === 'udp') reply(responseTo(query, { flags: dnsPacket.TRUNCATED_RESPONSE }));
      else reply(responseTo(query, { id: ((query.id ?? 0) + 1) & 0xffff }));
    };
    await assert.rejects(resolver()('big.test', 'TXT'), { code: 'EBADRESP' });
  });

  test('a server answering FORMERR to EDNS0 is asked again without it (RFC 6891 section 7)', async () => {
    respond = (query, reply) => {
      const edns = query.additionals?.some((record) => record.type === 'OPT') ?? false;
      reply(edns ? responseTo(query, { rcode: FORMERR }) : responseTo(query, { answers: [{ type: 'A', name: 'old.test', ttl: 60, data: '192.0.2.5' }] }));
    };
    const asked = dns.queries.length;
    assert.deepEqual((await resolver()('old.test', 'A')).records, ['192.0.2.5']);
    const sent = dns.queries.slice(asked).map((query) => query.packet.additionals?.length ?? 0);
    assert.deepEqual(sent, [1, 0]);
  });
});
