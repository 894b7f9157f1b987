import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { EDNS_UDP_PAYLOAD_SIZE, createPacketResolver } from '../../../src/dns/packetResolver.js';
import { responseTo, startScriptedDnsServer, type Responder, type ScriptedDnsServer } from './scriptedDnsServer.js';

const REAL = { type: 'A' as const, name: 'host.test', ttl: 300, data: '192.0.2.1' };
const FORGED = { type: 'A' as const, name: 'host.test', ttl: 300, data: '203.0.113.66' };

describe('answers are matched to the query they answer', () => {
  let respond: Responder = () => undefined;
  let dns: ScriptedDnsServer;
  before(async () => {
    dns = await startScriptedDnsServer((query, reply, transport) => respond(query, reply, transport));
  });
  after(() => dns.close());

  test('an answer carrying another id is dropped and the real answer that follows is used', async () => {
    respond = (query, reply) => {
      reply(responseTo(query, { id: ((query.id ?? 0) + 1) & 0xffff, answers: [FORGED] }));
      reply(responseTo(query, { answers: [REAL] }));
    };
    const resolve = createPacketResolver({ servers: [dns.server], timeoutMs: 2000, tries: 1 });
    assert.deepEqual(await resolve('host.test', 'A'), { records: ['192.0.2.1'], ttlSeconds: 300 });
  });

  test('an answer with our id but another question is dropped', async () => {
    respond = (query, reply) => {
      reply(responseTo(query, { questions: [{ type: 'A', name: 'other.test', class: 'IN' }], answers: [{ ...FORGED, name: 'other.test' }] }));
      reply(responseTo(query, { questions: [{ type: 'AAAA', name: 'host.test', class: 'IN' }], answers: [FORGED] }));
      reply(responseTo(query, { answers: [REAL] }));
    };
    const resolve = createPacketResolver({ servers: [dns.server], timeoutMs: 2000, tries: 1 });
    assert.deepEqual((await resolve('host.test', 'A')).records, ['192.0.2.1']);
  });

  test('bytes that are not a DNS response are dropped', async () => {
    respond = (query, reply) => {
      reply(Buffer.from('not dns at all'));
      reply(responseTo(query, { answers: [REAL] }));
    };
    const resolve = createPacketResolver({ servers: [dns.server], timeoutMs: 2000, tries: 1 });
    assert.deepEqual((await resolve('host.test', 'A')).records, ['192.0.2.1']);
  });

  test('when only forged answers arrive the query times out', async () => {
    respond = (query, reply) => reply(responseTo(query, { id: ((query.id ?? 0) + 1) & 0xffff, answers: [FORGED] }));
    const resolve = createPacketResolver({ servers: [dns.server], timeoutMs: 300, tries: 1 });
    await assert.rejects(resolve('host.test', 'A'), { code: 'ETIMEOUT', message: 'queryA ETIMEOUT host.test', hostname: 'host.test', syscall: 'queryA' });
  });

  test('the name in the answer matches whatever its case', async () => {
    respond = (query, reply) => reply(responseTo(query, { questions: [{ type: 'A', name: 'HOST.Test', class: 'IN' }], answers: [{ ...REAL, name: 'Host.TEST' }] }));
    const resolve = createPacketResolver({ servers: [dns.server], timeoutMs: 2000, tries: 1 });
    assert.deepEqual((await resolve('host.test.', 'A')).records, ['192.0.2.1']);
  });

  test('each query asks recursion, offers EDNS0 with a 1232-byte buffer and carries a fresh id', async () => {
    respond = (query, reply) => reply(responseTo(query, { answers: [REAL] }));
    const resolve = createPacketResolver({ servers: [dns.server], timeoutMs: 2000, tries: 1 });
    const before = dns.queries.length;
    for (let i = 0; i < 16; i++) await resolve('host.test', 'A');
    const sent = dns.queries.slice(before).map((query) => query.packet);
    for (const query of sent) {
      assert.equal(query.flag_rd, true);
      const opt = query.additionals?.find((record) => record.type === 'OPT');
      assert.ok(opt && 'udpPayloadSize' in opt, 'an OPT record is sent');
      assert.equal(opt.udpPayloadSize, EDNS_UDP_PAYLOAD_SIZE);
    }
    // Sixteen ids drawn from 65536 values are all equal with negligible probability.
    assert.ok(new Set(sent.map((query) => query.id)).size > 1, 'ids differ between queries');
  });
});
