import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createPacketResolver } from '../../../src/dns/packetResolver.js';
import { responseTo, startScriptedDnsServer, type Responder, type ScriptedDnsServer } from './scriptedDnsServer.js';

const NXDOMAIN = 3;

describe('CNAME chains in one answer', () => {
  let respond: Responder = () => undefined;
  let dns: ScriptedDnsServer;
  before(async () => {
    dns = await startScriptedDnsServer((query, reply, transport) => respond(query, reply, transport));
  });
  after(() => dns.close());
  const resolver = () => createPacketResolver({ servers: [dns.server], timeoutMs: 2000, tries: 1 });

  test('the chain is followed to the records of the asked type, kept for the lowest TTL along it', async () => {
    respond = (query, reply) =>
      reply(
        responseTo(query, {
          answers: [
            { type: 'CNAME', name: 'www.a.test', ttl: 3600, data: 'edge.b.test' },
            { type: 'CNAME', name: 'edge.b.test', ttl: 30, data: 'host.c.test' },
            { type: 'TXT', name: 'host.c.test', ttl: 600, data: ['v=spf1 -all'] },
          ],
        }),
      );
    assert.deepEqual(await resolver()('www.a.test', 'TXT'), { records: [['v=spf1 -all']], ttlSeconds: 30 });
  });

  test('records for names off the chain are ignored', async () => {
    respond = (query, reply) =>
      reply(
        responseTo(query, {
          answers: [
            { type: 'A', name: 'victim.test', ttl: 600, data: '203.0.113.66' },
            { type: 'CNAME', name: 'www.a.test', ttl: 600, data: 'host.a.test' },
            { type: 'A', name: 'host.a.test', ttl: 600, data: '192.0.2.7' },
          ],
        }),
      );
    assert.deepEqual((await resolver()('www.a.test', 'A')).records, ['192.0.2.7']);
  });

  test('asking for the CNAME itself gives the alias target without following it', async () => {
    respond = (query, reply) =>
      reply(
        responseTo(query, {
          answers: [
            { type: 'CNAME', name: 'www.a.test', ttl: 600, data: 'host.a.test' },
            { type: 'CNAME', name: 'host.a.test', ttl: 600, data: 'deeper.a.test' },
          ],
        }),
      );
    assert.deepEqual(await resolver()('www.a.test', 'CNAME'), { records: ['host.a.test'], ttlSeconds: 600 });
  });

  test('a chain ending in NXDOMAIN is ENOTFOUND and a chain that loops is ENODATA', async () => {
    respond = (query, reply) => reply(responseTo(query, { rcode: NXDOMAIN, answers: [{ type: 'CNAME', name: 'www.a.test', ttl: 600, data: 'gone.a.test' }] }));
    await assert.rejects(resolver()('www.a.test', 'A'), { code: 'ENOTFOUND' });
    respond = (query, reply) =>
      reply(
        responseTo(query, {
          answers: [
            { type: 'CNAME', name: 'www.a.test', ttl: 600, data: 'loop.a.test' },
            { type: 'CNAME', name: 'loop.a.test', ttl: 600, data: 'www.a.test' },
          ],
        }),
      );
    await assert.rejects(resolver()('www.a.test', 'A'), { code: 'ENODATA' });
  });
});
