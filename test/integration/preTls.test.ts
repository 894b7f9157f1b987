import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { describe, test } from 'node:test';
import { ALICE, gatewayWithUpstream } from '../helpers/gateway.js';
import { SmtpTestClient, authenticatedClient } from '../helpers/smtpClient.js';

function rawSocket(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port }, () => resolve(socket));
    socket.on('error', reject);
  });
}

function closed(socket: Socket): Promise<void> {
  return new Promise((resolve) => (socket.destroyed ? resolve() : socket.once('close', () => resolve())));
}

describe('before TLS', () => {
  const fixture = gatewayWithUpstream('limits: { tlsTimeout: 1s, idleTimeout: 10s, maxConnectionsPerIp: 3, maxConnections: 100 }');

  test('a client that keeps talking without starting TLS is cut off with 421 4.7.0', async () => {
    const client = await SmtpTestClient.connect(fixture.postern.submissionPort);
    await client.greeting();
    await client.ehlo();
    let reply = await client.command('NOOP');
    const deadline = Date.now() + 5000;
    while (reply.code === 250 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 200));
      reply = await client.command('NOOP').catch(() => ({ code: 0, lines: [], last: 'closed' }));
    }
    assert.equal(reply.last, '421 4.7.0 TLS was not started in time, closing connection');
    client.destroy();
  });

  test('sockets that never finish the implicit TLS handshake cannot hold every slot of their address, and are dropped after the TLS timeout', async () => {
    const idle = await Promise.all([1, 2, 3].map(() => rawSocket(fixture.postern.submissionsPort)));
    // A fourth connection from the same address is dropped before any handshake.
    await assert.rejects(SmtpTestClient.connect(fixture.postern.submissionsPort, { implicitTls: true }));
    // The idle ones are closed by the TLS timeout, and the address can connect again.
    await Promise.all(idle.map(closed));
    const client = await authenticatedClient(fixture.postern.submissionsPort, ALICE, { implicitTls: true });
    assert.equal((await client.command('MAIL FROM:<alice@example.com>')).code, 250);
    await client.quit();
  });
});
