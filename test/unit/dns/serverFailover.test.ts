import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { after, before, describe, test } from 'node:test';
import { createPacketResolver } from '../../../src/dns/packetResolver.js';
import { responseTo, startScriptedDnsServer, type Responder, type ScriptedDnsServer } from './scriptedDnsServer.js';

const SERVFAIL = 2;
const REFUSED = 5;
const ANSWER = { type: 'A' as const, name: 'host.test', ttl: 60, data: '192.0.2.1' };

/** A UDP port on 127.0.0.1 with nothing listening: the kernel answers port unreachable. */
async function closedUdpPort(): Promise<number> {
  const socket = createSocket('udp4');
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', () => resolve()));
  const { port } = socket.address();
  await new Promise<void>((resolve) => socket.close(() => resolve()));
  return port;
}

describe('servers that fail are skipped for the next', () => {
  let respondFirst: Responder = () => undefined;
  let respondSecond: Responder = () => undefined;
  let first: ScriptedDnsServer;
  let second: ScriptedDnsServer;
  before(async () => {
    first = await startScriptedDnsServer((query, reply, transport) => respondFirst(query, reply, transport));
    second = await startScriptedDnsServer((query, reply, transport) => respondSecond(query, reply, transport));
  });
  after(async () => {
    await first.close();
    await second.close();
  });

  test('a SERVFAIL from the first server sends the question to the second', async () => {
    respondFirst = (query, reply) => reply(responseTo(query, { rcode: SERVFAIL }));
    respondSecond = (query, reply) => reply(responseTo(query, { answers: [ANSWER] }));
    const resolve = createPacketResolver({ servers: [first.server, second.server], timeoutMs: 2000, tries: 1 });
    assert.deepEqual((await resolve('host.test', 'A')).records, ['192.0.2.1']);
  });

  test('when every server fails, each is asked `tries` times and the last failure is reported', async () => {
    respondFirst = (query, reply) => reply(responseTo(query, { rcode: SERVFAIL }));
    respondSecond = (query, reply) => reply(responseTo(query, { rcode: REFUSED }));
    const asked = first.queries.length + second.queries.length;
    const resolve = createPacketResolver({ servers: [first.server, second.server], timeoutMs: 2000, tries: 2 });
    await assert.rejects(resolve('host.test', 'A'), { code: 'EREFUSED', message: 'queryA EREFUSED host.test' });
    assert.equal(first.queries.length + second.queries.length - asked, 4);
  });

  test('a server that cannot be reached is ECONNREFUSED, and the next one is asked', async () => {
    const closed = `127.0.0.1:${await closedUdpPort()}`;
    await assert.rejects(createPacketResolver({ servers: [closed], timeoutMs: 2000, tries: 1 })('host.test', 'A'), { code: 'ECONNREFUSED' });
    respondSecond = (query, reply) => reply(responseTo(query, { answers: [ANSWER] }));
    const resolve = createPacketResolver({ servers: [closed, second.server], timeoutMs: 2000, tries: 1 });
    assert.deepEqual((await resolve('host.test', 'A')).records, ['192.0.2.1']);
  });

  test('a server that never answers is ETIMEOUT', async () => {
    respondFirst = () => undefined;
    const resolve = createPacketResolver({ servers: [first.server], timeoutMs: 200, tries: 2 });
    const asked = first.queries.length;
    await assert.rejects(resolve('host.test', 'A'), { code: 'ETIMEOUT' });
    assert.equal(first.queries.length - asked, 2);
  });
});
