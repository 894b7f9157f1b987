import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test, type TestContext } from 'node:test';
import type { Envelope } from '../../src/spool/envelope.js';
import { startWorldAndGateway, submit, waitForEmptyQueue, waitUntil } from '../helpers/mxWorld.js';
import { createTestCa, type TestCa } from '../helpers/testCa.js';

/**
 * MTA-STS (RFC 8461) through a real gateway: sts.test publishes `_mta-sts` TXT in dnsmasq, its
 * policy host mta-sts.sts.test is an HTTPS server on loopback with a certificate from a test
 * CA the gateway trusts (delivery.mx.ca), and its MX host speaks STARTTLS with a certificate
 * from the same CA: valid for the MX name, or for another name.
 */

const DOMAIN = 'sts.test';
const MX_NAME = `mx.${DOMAIN}`;
const MX = '127.0.0.2';
const ROGUE_NAME = `rogue.${DOMAIN}`;
const POLICY = `version: STSv1\r\nmode: enforce\r\nmx: ${MX_NAME}\r\nmax_age: 86400\r\n`;

/** The policy host: serves the policy over HTTPS, counting the requests. */
async function startPolicyHost(t: TestContext, ca: TestCa): Promise<{ port: number; requests: Array<{ path: string; host: string | undefined }> }> {
  const { certPem, keyPem } = ca.issue([`mta-sts.${DOMAIN}`]);
  const requests: Array<{ path: string; host: string | undefined }> = [];
  const server = createServer({ cert: certPem, key: keyPem }, (req, res) => {
    requests.push({ path: req.url ?? '', host: req.headers.host });
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.end(POLICY);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return { port: (server.address() as AddressInfo).port, requests };
}

/**
 * sts.test with its enforced policy, and its MX host presenting a certificate for `certificateNames`.
 * `rogue`: a more preferred MX host outside the policy, with these addresses (nothing listens there).
 */
async function startStsWorld(t: TestContext, certificateNames: string[], rogue: string[] = []) {
  const ca = createTestCa();
  const caDir = await mkdtemp(join(tmpdir(), 'postern-sts-ca-'));
  t.after(() => rm(caDir, { recursive: true, force: true }));
  const caFile = join(caDir, 'ca.pem');
  await writeFile(caFile, ca.caPem);
  const policyHost = await startPolicyHost(t, ca);
  const mxCertificate = ca.issue(certificateNames);
  const started = await startWorldAndGateway(
    t,
    {
      zone: {
        zone: DOMAIN,
        txt: { [`_mta-sts.${DOMAIN}`]: ['v=STSv1; id=1'] },
        mx: { [DOMAIN]: [{ preference: 20, exchange: MX_NAME }, ...(rogue.length > 0 ? [{ preference: 10, exchange: ROGUE_NAME }] : [])] },
        hosts: { [`mta-sts.${DOMAIN}`]: ['127.0.0.1'], [MX_NAME]: [MX], ...(rogue.length > 0 && { [ROGUE_NAME]: rogue }) },
      },
      hosts: { [MX]: { tls: { key: mxCertificate.keyPem, cert: mxCertificate.certPem } } },
      down: rogue,
    },
    {
      mx: `ca: ${JSON.stringify(caFile)}, mtaSts: { enabled: true, httpsPort: ${policyHost.port} }`,
      // One attempt: a deferred message waits an hour, so the test reads one outcome.
      retry: '{ schedule: [1h], maxAge: 2h, jitter: 0 }',
    },
  );
  return { ...started, policyHost };
}

describe('MTA-STS', () => {
  test('with an enforced policy, an MX host whose certificate is for another name gets nothing and the message stays queued', async (t) => {
    const { world, postern, log, policyHost } = await startStsWorld(t, [`other.${DOMAIN}`]);

    const queueId = await submit(postern, [`bob@${DOMAIN}`]);

    const why = await waitUntil(
      'the gateway logs why the MX host was not used',
      () => log.find((e) => e.msg === 'no MX host of the domain took the message' && e.queueId === queueId),
      () => log.filter((e) => e.component === 'delivery').map((e) => e.msg),
    );
    assert.equal(why.mtaSts, true, 'the line says MTA-STS was enforced');
    assert.match(String(why.reply), new RegExp(`${MX_NAME.replace(/\./g, '\\.')}\\[${MX.replace(/\./g, '\\.')}\\]: .*(certificate|altnames)`, 'i'));
    assert.ok(policyHost.requests.some((r) => r.path === '/.well-known/mta-sts.txt' && r.host === `mta-sts.${DOMAIN}:${policyHost.port}`), 'the policy was fetched from the policy host');

    const envelopeFile = join(postern.dir, 'spool', 'queue', `${queueId}.json`);
    const envelope = await waitUntil('the deferral is recorded in the queue', async () => {
      const recorded = JSON.parse(await readFile(envelopeFile, 'utf8')) as Envelope;
      return recorded.attempts >= 1 ? recorded : undefined;
    });
    assert.equal(envelope.recipients[0]!.status, 'pending', 'deferred, not failed');
    assert.match(envelope.recipients[0]!.lastReply ?? '', /^4\.4\.1 .*MTA-STS enforced/);
    assert.ok(world.hosts[MX]!.connections >= 1, 'the MX host was reached');
    assert.equal(world.hosts[MX]!.messages.length, 0, 'and sent nothing, not even in plaintext');
    assert.equal(world.mailbox.connections, 0, 'no bounce for a deferral');
  });

  test('with an enforced policy, an MX host whose certificate is valid for its name gets the message over TLS', async (t) => {
    const { world, postern, policyHost } = await startStsWorld(t, [MX_NAME]);

    await submit(postern, [`bob@${DOMAIN}`]);

    const [received] = await world.hosts[MX]!.waitFor(1);
    assert.deepEqual(received!.to, [`bob@${DOMAIN}`]);
    assert.equal(received!.secure, true, 'the session was TLS');
    await waitForEmptyQueue(postern);
    assert.ok(policyHost.requests.length >= 1, 'the policy was fetched');
  });

  test('a policy naming only a less preferred MX host finds it behind a preferred host with more addresses than are tried', async (t) => {
    // The preferred host, outside the policy, has 12 addresses: more than the 10 tried per domain.
    const rogue = Array.from({ length: 12 }, (_, i) => `127.0.0.${10 + i}`);
    const { world, postern } = await startStsWorld(t, [MX_NAME], rogue);

    await submit(postern, [`bob@${DOMAIN}`]);

    const [received] = await world.hosts[MX]!.waitFor(1);
    assert.deepEqual(received!.to, [`bob@${DOMAIN}`]);
    assert.equal(received!.secure, true);
    await waitForEmptyQueue(postern);
  });
});
