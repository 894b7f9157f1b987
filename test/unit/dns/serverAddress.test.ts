import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { parseServerAddress } from '../../../src/dns/serverAddress.js';

describe('DNS server addresses', () => {
  test('are read as node:dns writes them, the port defaulting to 53', () => {
    assert.deepEqual(parseServerAddress('192.0.2.1'), { host: '192.0.2.1', port: 53, family: 4 });
    assert.deepEqual(parseServerAddress('127.0.0.1:5353'), { host: '127.0.0.1', port: 5353, family: 4 });
    assert.deepEqual(parseServerAddress('2001:db8::53'), { host: '2001:db8::53', port: 53, family: 6 });
    assert.deepEqual(parseServerAddress('[::1]:5353'), { host: '::1', port: 5353, family: 6 });
    assert.deepEqual(parseServerAddress('[::1]'), { host: '::1', port: 53, family: 6 });
  });

  test('that are not an IP address with an optional port are refused, naming the value', () => {
    for (const server of ['dns.example', '127.0.0.1:0', '127.0.0.1:65536', '[127.0.0.1]:53', '::1:53x', '']) {
      assert.throws(() => parseServerAddress(server), (error: unknown) => error instanceof TypeError && error.message.includes(`"${server}"`), server);
    }
  });
});
