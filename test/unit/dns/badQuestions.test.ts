import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createPacketResolver } from '../../../src/dns/packetResolver.js';
import { responseTo, startScriptedDnsServer, type ScriptedDnsServer } from './scriptedDnsServer.js';

describe('questions that cannot be asked', () => {
  let dns: ScriptedDnsServer;
  before(async () => {
    dns = await startScriptedDnsServer((query, reply) => reply(responseTo(query)));
  });
  after(() => dns.close());
  const resolver = () => createPacketResolver({ servers: [dns.server], timeoutMs: 2000, tries: 1 });

  test('a name that does not fit a DNS question is EBADNAME and nothing is sent', async () => {
    const asked = dns.queries.length;
    for (const name of ['', '.', 'a..b.test', `${'x'.repeat(64)}.test`, `${'abcdefghi.'.repeat(26)}test`, 'bad name.test']) {
      await assert.rejects(resolver()(name, 'A'), { code: 'EBADNAME', hostname: name }, `"${name}" is refused`);
    }
    assert.equal(dns.queries.length, asked);
  });

  test('a record type node:dns does not resolve is a TypeError and nothing is sent', async () => {
    const asked = dns.queries.length;
    await assert.rejects(resolver()('host.test', 'ANY'), (error: unknown) => error instanceof TypeError && (error as { code?: string }).code === 'ERR_INVALID_ARG_VALUE');
    assert.equal(dns.queries.length, asked);
  });

  test('a server that is not an address is refused when the resolver is made', () => {
    for (const server of ['dns.example', '127.0.0.1:99999', '[127.0.0.1]:53', '::1:53x']) {
      assert.throws(() => createPacketResolver({ servers: [server] }), TypeError, server);
    }
  });
});
