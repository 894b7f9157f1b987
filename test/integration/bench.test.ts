import { execFile } from 'node:child_process';
import { resolve } from 'node:path';
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { promisify } from 'node:util';
import type { BenchReport } from '../bench/report.js';

const REPO = resolve(import.meta.dirname, '../..');
const run = promisify(execFile);

/**
 * The benchmark harness end to end, untimed: it starts Postern (from dist/ when that is
 * current, else from src/ through tsx) and its sink, sends real SMTP, and reports JSON. Only
 * the shape and the counts are asserted; the figures depend on the machine.
 */
async function bench(...args: string[]): Promise<BenchReport> {
  const { stdout } = await run(process.execPath, ['--import', 'tsx', 'test/bench/run.ts', ...args, '--json'], {
    cwd: REPO,
    maxBuffer: 16 * 1024 * 1024,
    timeout: 180_000,
  });
  return JSON.parse(stdout) as BenchReport;
}

function assertHealthyRun(report: BenchReport, expected: { tls: string; connectionPerMessage: boolean; name?: string }): void {
  assert.ok(report.postern && ['dist', 'tsx'].includes(report.postern.runner), 'the report says how Postern was run');
  assert.equal(report.machine.cpus > 0, true);
  assert.equal(report.scenarios.length, 1);
  const [result] = report.scenarios;
  assert.ok(result);
  assert.equal(result.name, expected.name ?? 'persistent-starttls-5k');
  assert.equal(result.target, 'postern');
  assert.equal(result.options.tls, expected.tls);
  assert.equal(result.options.connectionPerMessage, expected.connectionPerMessage);
  assert.deepEqual(result.firstErrors, []);
  assert.equal(result.errors, 0);
  assert.equal(result.accepted, 40);
  assert.equal(result.delivered, 40, 'every accepted message reached the sink');
  assert.ok(result.acceptedPerSecond > 0);
  assert.ok(result.deliveredPerSecond !== null && result.deliveredPerSecond > 0);
  for (const latency of [result.mailTo250Ms, result.dataTo250Ms, result.acceptedToDeliveredMs]) {
    assert.ok(latency, 'latency percentiles are present');
    assert.ok(latency.p50 >= 0 && latency.p50 <= latency.p95 && latency.p95 <= latency.p99);
  }
  assert.ok(result.cpuMsPerMessage !== null && result.cpuMsPerMessage > 0, 'Postern CPU per message is measured');
  assert.ok(result.peakRssMiB !== null && result.peakRssMiB > 0, 'Postern peak RSS is measured');
}

describe('npm run bench', () => {
  test('persistent STARTTLS sessions deliver every message and report latencies and cost', async () => {
    const report = await bench('--scenario', 'persistent-starttls-5k', '--messages', '40', '--concurrency', '4');
    assertHealthyRun(report, { tls: 'starttls', connectionPerMessage: false });
    assert.equal(report.postern?.dkim, 'none', 'Postern signs nothing unless --dkim says so');
    assert.deepEqual(report.scenarios[0]?.dkimAtSink, { signedMessages: 0, byAlgorithm: {} });
  });

  test('with --dkim ed25519 every message reaches the sink with an Ed25519 DKIM signature', async () => {
    const report = await bench('--scenario', 'persistent-starttls-5k', '--messages', '40', '--concurrency', '4', '--dkim', 'ed25519');
    assertHealthyRun(report, { tls: 'starttls', connectionPerMessage: false });
    assert.equal(report.postern?.dkim, 'ed25519', 'the report says which signing was on');
    assert.deepEqual(report.scenarios[0]?.dkimAtSink, { signedMessages: 40, byAlgorithm: { 'ed25519-sha256': 40 } });
  });

  test('the dkim-sign scenario times RSA-2048 and Ed25519 signatures of 5 KB and 1 MB messages', async () => {
    const report = await bench('--scenario', 'dkim-sign', '--messages', '3');
    assert.equal(report.postern, null, 'no Postern process is started: the signer runs in the bench process');
    assert.equal(report.scenarios.length, 1);
    const [result] = report.scenarios;
    assert.equal(result?.name, 'dkim-sign');
    assert.ok(result.signing, 'the signing figures are reported');
    const cases = result.signing.cases.map((c) => `${c.algorithm}-${c.keyBits ?? 'none'}/${c.size}`);
    assert.deepEqual(cases, ['rsa-2048/5000', 'rsa-2048/1000000', 'ed25519-none/5000', 'ed25519-none/1000000']);
    for (const c of result.signing.cases) {
      assert.equal(c.iterations, 3);
      assert.ok(c.warmupIterations >= 1, 'each case warms up before it is measured');
      assert.ok(c.signaturesPerSecond > 0 && c.cpuMsPerSignature > 0, `${c.algorithm} ${c.size}: rate and CPU are measured`);
      assert.ok(c.msPerSignature && c.msPerSignature.p50 > 0 && c.msPerSignature.p50 <= c.msPerSignature.p99);
    }
  });

  test('the dkim-sign scenario measures only the size given with --size', async () => {
    const report = await bench('--scenario', 'dkim-sign', '--messages', '2', '--size', '2KB');
    const sizes = report.scenarios[0]?.signing?.cases.map((c) => [c.algorithm, c.size]);
    assert.deepEqual(sizes, [
      ['rsa', 2000],
      ['ed25519', 2000],
    ]);
  });

  test('one implicit-TLS connection per message delivers every message too', async () => {
    const report = await bench('--scenario', 'persistent-starttls-5k', '--messages', '40', '--concurrency', '4', '--connection-per-message', '--tls', 'implicit');
    assertHealthyRun(report, { tls: 'implicit', connectionPerMessage: true });
  });

  test('the mx scenario delivers every message to the sink found by an MX lookup', async () => {
    const report = await bench('--scenario', 'mx', '--messages', '40', '--concurrency', '4');
    assertHealthyRun(report, { tls: 'starttls', connectionPerMessage: false, name: 'mx' });
  });

  test('the recovery scenario recovers and schedules every message it wrote to a spool', async () => {
    const report = await bench('--scenario', 'recovery', '--messages', '300', '--concurrency', '8');
    assert.equal(report.postern, null, 'no Postern process is started: the spool is measured in a process of its own');
    const [result] = report.scenarios;
    assert.ok(result?.recovery, 'the recovery figures are reported');
    const { recovery } = result;
    assert.equal(recovery.messages, 300);
    assert.equal(recovery.concurrency, 8);
    assert.equal(recovery.attemptsStarted, 8, 'start() began one attempt per delivery worker');
    for (const figure of [recovery.openMs, recovery.heapAfterMiB, recovery.rssAfterMiB]) assert.ok(Number.isFinite(figure) && figure > 0);
    // Scheduling 300 messages may round to 0.0 ms; only its presence is checked.
    for (const figure of [recovery.startMs, recovery.openHeapMiB, recovery.startHeapMiB]) assert.ok(Number.isFinite(figure));
  });

  test('scenarios that measure Postern itself are refused against another server', async () => {
    await assert.rejects(
      run(process.execPath, ['--import', 'tsx', 'test/bench/run.ts', '--target', '127.0.0.1:1', '--scenario', 'recovery'], { cwd: REPO }),
      (err: Error & { stderr?: string }) => /recovery measures Postern's own delivery, spool or DKIM signer; not with --target/.test(err.stderr ?? ''),
    );
    await assert.rejects(
      run(process.execPath, ['--import', 'tsx', 'test/bench/run.ts', '--vs', '127.0.0.1:1', '--scenario', 'dkim-sign'], { cwd: REPO }),
      (err: Error & { stderr?: string }) => /dkim-sign measures Postern's own delivery, spool or DKIM signer; not with --vs/.test(err.stderr ?? ''),
    );
  });

  test('--dkim is refused with --target, whose signing the bench does not configure', async () => {
    await assert.rejects(
      run(process.execPath, ['--import', 'tsx', 'test/bench/run.ts', '--target', '127.0.0.1:1', '--dkim', 'rsa'], { cwd: REPO }),
      (err: Error & { stderr?: string }) => /--dkim configures the Postern the bench starts/.test(err.stderr ?? ''),
    );
  });

  test('a target that refuses every connection yields errors, not a hang', async () => {
    // Port 1 on loopback is closed on any machine that runs these tests.
    const report = await bench('--target', '127.0.0.1:1', '--scenario', 'persistent-starttls-5k', '--messages', '3', '--concurrency', '1');
    assert.equal(report.postern, null);
    const [result] = report.scenarios;
    assert.ok(result);
    assert.equal(result.target, '127.0.0.1:1');
    assert.equal(result.accepted, 0);
    assert.equal(result.errors, 3);
    assert.match(result.firstErrors[0] ?? '', /connect to 127\.0\.0\.1:1 failed/);
    assert.equal(result.cpuMsPerMessage, null);
  });
});
