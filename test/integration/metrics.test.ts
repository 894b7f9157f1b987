import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ALICE, startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { sampleMessage } from '../helpers/messages.js';
import { authenticatedClient, SmtpTestClient } from '../helpers/smtpClient.js';
import { startUpstream, type Upstream } from '../helpers/upstream.js';

/** Samples of Prometheus' text format, keyed `name{label="value",...}` with labels sorted. */
type Samples = Map<string, number>;

function parseSamples(text: string): Samples {
  const samples: Samples = new Map();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const match = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})?\s+(\S+)$/.exec(line);
    assert.ok(match, `not a sample line: ${line}`);
    const labels = [...(match[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map(([, name, value]) => `${name}="${value}"`).sort();
    samples.set(`${match[1]}{${labels.join(',')}}`, Number(match[3]));
  }
  return samples;
}

/** `series('x_total', { b: '2', a: '1' })` is the key `x_total{a="1",b="2"}`. */
function series(name: string, labels: Record<string, string> = {}): string {
  return `${name}{${Object.entries(labels)
    .map(([label, value]) => `${label}="${value}"`)
    .sort()
    .join(',')}}`;
}

/** Each series of a family (postern_x_total, or a histogram's _count) that moved, and by how much. */
function movedIn(before: Samples, after: Samples, name: string): Record<string, number> {
  const moved: Record<string, number> = {};
  for (const [key, value] of after) {
    if (!key.startsWith(`${name}{`)) continue;
    const delta = value - (before.get(key) ?? 0);
    if (delta !== 0) moved[key] = delta;
  }
  return moved;
}

describe('metrics after real SMTP sessions', () => {
  let upstream: Upstream | undefined;
  let postern: TestGateway | undefined;
  const gateway = () => postern!;

  before(async () => {
    // The upstream defers one recipient (451), which stays queued: retries are an hour apart
    // so that a retry cannot move the counters while the test reads them.
    upstream = await startUpstream({ rcptReply: (address) => (address.startsWith('later@') ? { code: 451, message: 'Try again later' } : undefined) });
    postern = await startTestGateway({
      upstreamPort: upstream.port,
      extraYaml: [
        'http: { enabled: true, host: 127.0.0.1, port: 0 }',
        'limits: { maxMessageSize: 16KiB }',
        `delivery: { smarthost: { host: 127.0.0.1, port: ${upstream.port}, tls: starttls, verifyCertificate: false }, retry: { schedule: [1h], maxAge: 2h } }`,
      ].join('\n'),
    });
  });
  after(async () => {
    await postern?.dispose();
    await upstream?.close();
  });

  const scrapeText = async () => {
    const response = await fetch(`http://127.0.0.1:${gateway().gateway.httpAddress!.port}/metrics`);
    assert.equal(response.status, 200);
    return response.text();
  };
  const scrape = async () => parseSamples(await scrapeText());
  /** Scrapes until `done` holds: the gateway notices a closed session or a delivery attempt a moment after the client. */
  const scrapeUntil = async (done: (samples: Samples) => boolean, what: string) => {
    for (let tries = 0; tries < 200; tries += 1) {
      const samples = await scrape();
      if (done(samples)) return samples;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    assert.fail(`the metrics never showed ${what}`);
  };

  test('each counter moves by exactly what the sessions did', async () => {
    const port = gateway().submissionPort;
    const start = await scrape();

    // 1. Accepted and delivered.
    const delivered = await authenticatedClient(port, ALICE);
    assert.equal((await delivered.command('MAIL FROM:<alice@example.com>')).code, 250);
    assert.equal((await delivered.command('RCPT TO:<bob@example.net>')).code, 250);
    assert.equal((await delivered.data(sampleMessage('delivered'))).code, 250);
    await delivered.quit();
    await upstream!.waitFor(1);

    // 2. Refused at MAIL by a shipped policy rule: alice may not send as someone else.
    const spoofed = await authenticatedClient(port, ALICE);
    assert.equal((await spoofed.command('MAIL FROM:<ceo@example.com>')).code, 550);
    await spoofed.quit();

    // 3. Too big.
    const big = await authenticatedClient(port, ALICE);
    assert.equal((await big.command('MAIL FROM:<alice@example.com>')).code, 250);
    assert.equal((await big.command('RCPT TO:<bob@example.net>')).code, 250);
    assert.equal((await big.data(sampleMessage('big') + 'x'.repeat(76).concat('\r\n').repeat(400))).code, 552);
    await big.quit();

    // 4. A failed login.
    const guesser = await SmtpTestClient.connect(port);
    await guesser.greeting();
    await guesser.ehlo();
    assert.equal((await guesser.startTls()).code, 220);
    await guesser.ehlo();
    assert.equal((await guesser.authPlain(ALICE.user, 'not the password')).code, 535);
    await guesser.quit();

    // 5. Accepted, then deferred by the upstream.
    const deferred = await authenticatedClient(port, ALICE);
    assert.equal((await deferred.command('MAIL FROM:<alice@example.com>')).code, 250);
    assert.equal((await deferred.command('RCPT TO:<later@example.net>')).code, 250);
    const deferredSize = Buffer.byteLength(sampleMessage('deferred'));
    assert.equal((await deferred.data(sampleMessage('deferred'))).code, 250);
    await deferred.quit();

    const end = await scrapeUntil(
      (samples) =>
        samples.get(series('postern_delivery_attempts_total', { result: 'deferred' }))! > start.get(series('postern_delivery_attempts_total', { result: 'deferred' }))! &&
        samples.get(series('postern_connections_active', { listener: 'submission' })) === 0,
      'the deferral and every session closed',
    );
    const moved = (name: string) => movedIn(start, end, name);

    assert.deepEqual(moved('postern_connections_total'), { [series('postern_connections_total', { listener: 'submission' })]: 5 });
    assert.deepEqual(moved('postern_connections_refused_total'), {});
    assert.deepEqual(moved('postern_tls_sessions_total'), { [series('postern_tls_sessions_total', { listener: 'submission', version: 'TLSv1.3' })]: 5 });
    assert.deepEqual(moved('postern_tls_handshake_failures_total'), {});
    assert.deepEqual(moved('postern_auth_attempts_total'), {
      [series('postern_auth_attempts_total', { mechanism: 'PLAIN', result: 'success' })]: 4,
      [series('postern_auth_attempts_total', { mechanism: 'PLAIN', result: 'invalid' })]: 1,
    });
    assert.deepEqual(moved('postern_auth_lockouts_total'), {});
    assert.deepEqual(moved('postern_messages_received_total'), { [series('postern_messages_received_total')]: 3 });
    assert.deepEqual(moved('postern_messages_accepted_total'), { [series('postern_messages_accepted_total')]: 2 });
    assert.deepEqual(moved('postern_messages_rejected_total'), {
      [series('postern_messages_rejected_total', { stage: 'mail', reason: 'envelope-sender-owned' })]: 1,
      [series('postern_messages_rejected_total', { stage: 'data', reason: 'size' })]: 1,
    });
    assert.deepEqual(moved('postern_message_size_bytes_count'), { [series('postern_message_size_bytes_count')]: 2 });
    assert.deepEqual(moved('postern_delivery_attempts_total'), {
      [series('postern_delivery_attempts_total', { result: 'delivered' })]: 1,
      [series('postern_delivery_attempts_total', { result: 'deferred' })]: 1,
    });
    assert.deepEqual(moved('postern_delivery_latency_seconds_count'), { [series('postern_delivery_latency_seconds_count')]: 1 });
    assert.deepEqual(moved('postern_rate_limit_hits_total'), {});
    assert.deepEqual(moved('postern_reloads_total'), {});

    // The spool holds the deferred message, and nothing else.
    const queue = join(gateway().dir, 'spool', 'queue');
    const envelopes = await Promise.all(
      (await readdir(queue)).filter((name) => name.endsWith('.json')).map(async (name) => JSON.parse(await readFile(join(queue, name), 'utf8')) as { size: number; receivedAt: number }),
    );
    assert.equal(envelopes.length, 1);
    const sizeSum = end.get(series('postern_message_size_bytes_sum'))! - start.get(series('postern_message_size_bytes_sum'))!;
    assert.ok(sizeSum >= deferredSize, `the accepted sizes add up to ${sizeSum}`);
    const scrapedBefore = Date.now();
    const spool = await scrape();
    const scrapedAfter = Date.now();
    assert.equal(spool.get(series('postern_spool_messages')), 1);
    assert.equal(spool.get(series('postern_spool_bytes')), envelopes[0]!.size);
    const age = spool.get(series('postern_spool_oldest_message_age_seconds'))!;
    assert.ok(
      age >= (scrapedBefore - envelopes[0]!.receivedAt) / 1000 && age <= (scrapedAfter - envelopes[0]!.receivedAt) / 1000,
      `the oldest message's age ${age}s matches its receivedAt ${envelopes[0]!.receivedAt}`,
    );
  });

  test('the certificate gauge is the notAfter of the certificate the listeners present', async () => {
    const certificate = new X509Certificate(await readFile(join(gateway().dir, 'certs', 'tls.crt')));
    const samples = await scrape();
    assert.equal(samples.get(series('postern_tls_certificate_not_after_timestamp_seconds')), Date.parse(certificate.validTo) / 1000);
  });

  test('a TLS handshake that fails is counted on its listener', async () => {
    const before = await scrape();
    // Plaintext SMTP to the implicit-TLS port is not a TLS ClientHello.
    const client = await SmtpTestClient.connect(gateway().submissionsPort);
    client.write('EHLO plain.example.test\r\n'.repeat(20));
    await client.read().catch(() => undefined);
    client.destroy();
    const key = series('postern_tls_handshake_failures_total', { listener: 'submissions' });
    const after = await scrapeUntil((samples) => samples.get(key)! > before.get(key)!, 'the failed handshake');
    assert.equal(after.get(key)! - before.get(key)!, 1);
    assert.deepEqual(movedIn(before, after, 'postern_connections_total'), {});
  });

  test('a reload counts one success for the users file and one for the certificate', async () => {
    const before = await scrape();
    gateway().gateway.reload();
    const after = await scrape();
    assert.deepEqual(movedIn(before, after, 'postern_reloads_total'), {
      [series('postern_reloads_total', { what: 'users', result: 'success' })]: 1,
      [series('postern_reloads_total', { what: 'certificate', result: 'success' })]: 1,
    });
  });

  test('promtool accepts the /metrics output', async () => {
    const text = await scrapeText();
    const promtool = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
    if (promtool.error) {
      assert.fail(`promtool is needed for this test (Debian package "prometheus"): ${promtool.error.message}`);
    }
    assert.equal(promtool.status, 0, `promtool check metrics:\n${promtool.stdout}${promtool.stderr}`);
  });
});

describe('metrics of limits: rate limits and login lockouts', () => {
  let policiesDir: string | undefined;
  let upstream: Upstream | undefined;
  let postern: TestGateway | undefined;

  before(async () => {
    const policies = await mkdtemp(join(tmpdir(), 'postern-policies-'));
    await writeFile(
      join(policies, 'limits.yaml'),
      'rules:\n  - name: one-a-minute\n    type: rate-limit\n    params: { count: messages, key: [user], limits: [{ max: 1, per: 1m }] }\n',
    );
    upstream = await startUpstream();
    postern = await startTestGateway({
      upstreamPort: upstream.port,
      extraYaml: `http: { enabled: true, host: 127.0.0.1, port: 0 }\npolicies: { dir: ${JSON.stringify(policies)} }`,
    });
    policiesDir = policies;
  });
  after(async () => {
    await postern?.dispose();
    await upstream?.close();
    if (policiesDir) await rm(policiesDir, { recursive: true, force: true });
  });

  const scrape = async () => parseSamples(await (await fetch(`http://127.0.0.1:${postern!.gateway.httpAddress!.port}/metrics`)).text());

  test('a deferral by a rate-limit rule counts one hit and one rejection under the rule name', async () => {
    const before = await scrape();
    const client = await authenticatedClient(postern!.submissionPort, ALICE);
    const replies: number[] = [];
    for (let message = 0; message < 2; message += 1) {
      const mail = await client.command('MAIL FROM:<alice@example.com>');
      const rcpt = mail.code === 250 ? await client.command('RCPT TO:<bob@example.net>') : mail;
      const data = rcpt.code === 250 ? await client.data(sampleMessage(`limited ${message}`)) : rcpt;
      replies.push(data.code);
      if (data.code !== 250) await client.command('RSET');
    }
    await client.quit();
    assert.deepEqual(replies, [250, 450]);
    const after = await scrape();
    assert.deepEqual(movedIn(before, after, 'postern_rate_limit_hits_total'), { [series('postern_rate_limit_hits_total', { rule: 'one-a-minute' })]: 1 });
    const rejected = movedIn(before, after, 'postern_messages_rejected_total');
    assert.equal(Object.keys(rejected).length, 1, JSON.stringify(rejected));
    assert.match(Object.keys(rejected)[0]!, /reason="one-a-minute"/);
    assert.equal(Object.values(rejected)[0], 1);
  });

  test('a lock counts once per scope when it begins, and the refused login after it as locked', async () => {
    const before = await scrape();
    const port = postern!.submissionPort;
    // Five failures (the default allowance) from one address as one user lock both.
    for (let attempt = 0; attempt < 6; attempt += 1) {
      const client = await SmtpTestClient.connect(port);
      await client.greeting();
      await client.ehlo();
      await client.startTls();
      await client.ehlo();
      assert.equal((await client.authPlain('mallory', 'guess')).code, attempt < 5 ? 535 : 454);
      await client.quit();
    }
    const after = await scrape();
    assert.deepEqual(movedIn(before, after, 'postern_auth_lockouts_total'), {
      [series('postern_auth_lockouts_total', { scope: 'ip' })]: 1,
      [series('postern_auth_lockouts_total', { scope: 'user' })]: 1,
    });
    assert.deepEqual(movedIn(before, after, 'postern_auth_attempts_total'), {
      [series('postern_auth_attempts_total', { mechanism: 'PLAIN', result: 'invalid' })]: 5,
      [series('postern_auth_attempts_total', { mechanism: 'PLAIN', result: 'locked' })]: 1,
    });
  });
});
