import assert from 'node:assert/strict';
import { cp, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ALICE, startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { sampleMessage } from '../helpers/messages.js';
import { authenticatedClient } from '../helpers/smtpClient.js';
import { startUpstream, type Upstream } from '../helpers/upstream.js';

const SHIPPED_POLICIES = resolve(import.meta.dirname, '../../policies');

/** A custom rule type that throws for one subject and never answers for another, to stand for a broken operator module. */
const FLAKY_RULE = `
export default {
  type: 'flaky',
  stages: ['data'],
  params: (raw = {}) => raw,
  create() {
    return {
      evaluate(ctx) {
        const subject = ctx.message.headers.find((h) => h.key === 'subject')?.value ?? '';
        if (subject === 'boom') throw new Error('the rule broke');
        // A lookup that hangs for ever: only the rule's timeout ends it.
        if (subject === 'hang') return new Promise(() => {});
        return { action: 'continue', annotations: { headers: [{ name: 'X-Policy-Checked', value: 'yes' }] } };
      },
    };
  },
};
`;

/** One sample from Postern's /metrics, or 0 when the series does not exist yet. */
async function metric(postern: TestGateway, series: string): Promise<number> {
  const address = postern.gateway.httpAddress!;
  const text = await (await fetch(`http://127.0.0.1:${address.port}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line ? Number(line.slice(series.length + 1)) : 0;
}

async function send(port: number, options: { from?: string; subject: string; headerFrom?: string }) {
  const client = await authenticatedClient(port, ALICE);
  const mail = await client.command(`MAIL FROM:<${options.from ?? 'alice@example.com'}>`);
  if (mail.code !== 250) {
    await client.quit();
    return mail;
  }
  await client.command('RCPT TO:<bob@example.net>');
  const body = sampleMessage(options.subject).replace('From: Alice <alice@example.com>', `From: ${options.headerFrom ?? 'Alice <alice@example.com>'}`);
  const reply = await client.data(body);
  await client.quit();
  return reply;
}

describe('the policy, through real SMTP sessions', () => {
  let upstream: Upstream;
  let postern: TestGateway;
  let policies: string;

  before(async () => {
    policies = await mkdtemp(join(tmpdir(), 'postern-policies-'));
    await cp(SHIPPED_POLICIES, policies, { recursive: true });
    await writeFile(join(policies, 'flaky.mjs'), FLAKY_RULE);
    await writeFile(
      join(policies, '40-extra.yaml'),
      [
        'rules:',
        '  - name: no-example-org',
        '    type: recipient-domains',
        '    mode: monitor',
        '    params: { deny: [example.org] }',
        '  - name: flaky-check',
        '    type: flaky',
        '    timeout: 400ms',
      ].join('\n'),
    );
    upstream = await startUpstream();
    postern = await startTestGateway({
      upstreamPort: upstream.port,
      extraYaml: `policies: { dir: ${JSON.stringify(policies)} }\nhttp: { enabled: true, host: 127.0.0.1, port: 0 }`,
    });
  });
  after(async () => {
    await postern.dispose();
    await upstream.close();
    await rm(policies, { recursive: true, force: true });
  });

  test('a spoofed envelope sender is refused at MAIL', async () => {
    const reply = await send(postern.submissionPort, { from: 'ceo@example.com', subject: 'spoof envelope' });
    assert.equal(reply.last, '550 5.7.1 alice may not send as ceo@example.com');
  });

  test('a spoofed From: header is refused at the end of DATA and nothing is relayed', async () => {
    const before = upstream.messages.length;
    const reply = await send(postern.submissionPort, { subject: 'spoof header', headerFrom: 'The CEO <ceo@example.com>' });
    assert.equal(reply.code, 550);
    assert.match(reply.last, /^550 5\.7\.1 alice may not use From: ceo@example\.com/);
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(upstream.messages.length, before);
  });

  test('a monitor-mode rule changes nothing, and headers a rule adds are relayed', async () => {
    const series = 'postern_policy_decisions_total{rule="no-example-org",verdict="reject",mode="monitor"}';
    const monitoredBefore = await metric(postern, series);
    const client = await authenticatedClient(postern.submissionPort, ALICE);
    await client.command('MAIL FROM:<alice@example.com>');
    assert.equal((await client.command('RCPT TO:<carol@example.org>')).code, 250, 'monitor mode does not refuse');
    const reply = await client.data(sampleMessage('monitored'));
    await client.quit();
    assert.equal(reply.code, 250, reply.last);
    const messages = await upstream.waitFor(1);
    const relayed = messages.find((m) => m.raw.toString().includes('Subject: monitored'))!;
    assert.match(relayed.raw.toString(), /^Received: [\s\S]*?\r\nX-Policy-Checked: yes\r\nFrom: Alice/);
    assert.equal(await metric(postern, series), monitoredBefore + 1, 'what monitor mode would have done is counted');
  });

  test('a rule that throws answers 451 4.3.0, and the next message goes through', async () => {
    const errorsBefore = await metric(postern, 'postern_policy_rule_errors_total{rule="flaky-check"}');
    const broken = await send(postern.submissionPort, { subject: 'boom' });
    assert.equal(broken.last, '451 4.3.0 Temporary local problem, try again later');
    assert.equal(await metric(postern, 'postern_policy_rule_errors_total{rule="flaky-check"}'), errorsBefore + 1);
    const fine = await send(postern.submissionPort, { subject: 'after the fault' });
    assert.equal(fine.code, 250, fine.last);
  });

  test('a rule that never answers is cut off at its timeout with 451 4.3.0; nothing is relayed and the gateway goes on', async () => {
    const errorsBefore = await metric(postern, 'postern_policy_rule_errors_total{rule="flaky-check"}');
    const relayedBefore = upstream.messages.length;
    const hung = await send(postern.submissionPort, { subject: 'hang' });
    assert.equal(hung.last, '451 4.3.0 Temporary local problem, try again later');
    assert.equal(await metric(postern, 'postern_policy_rule_errors_total{rule="flaky-check"}'), errorsBefore + 1);
    const fine = await send(postern.submissionPort, { subject: 'after the hang' });
    assert.equal(fine.code, 250, fine.last);
    await upstream.waitFor(relayedBefore + 1);
    assert.ok(!upstream.messages.some((m) => m.raw.toString().includes('Subject: hang')), 'the message the rule never judged was not relayed');
  });

  test('a changed policy is picked up by itself; a file with a mistake is refused whole and the running policy stays', async () => {
    const probeRule = (name: string) =>
      `rules:\n  - name: ${name}\n    type: headers\n    params:\n      patterns: [{ header: Subject, match: "^probe$", action: reject, text: "probe refused" }]\n`;
    await writeFile(join(policies, '50-probe.yaml'), probeRule('probe'));
    const refusedProbe = async () => (await send(postern.submissionPort, { subject: 'probe' })).code === 550;
    const deadline = Date.now() + 10_000;
    while (!(await refusedProbe()) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
    assert.equal(await refusedProbe(), true, 'the new rule took effect without a restart');

    // One change that removes the probe rule and adds a broken file: refused as a whole.
    await writeFile(join(policies, '50-probe.yaml'), 'rules: []\n');
    await writeFile(join(policies, '60-broken.yaml'), 'rules:\n  - name: typo\n    type: no-such-rule\n');
    const failedReloads = await metric(postern, 'postern_policy_reloads_total{result="failure"}');
    const reloadDeadline = Date.now() + 10_000;
    while ((await metric(postern, 'postern_policy_reloads_total{result="failure"}')) === failedReloads && Date.now() < reloadDeadline) {
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.ok((await metric(postern, 'postern_policy_reloads_total{result="failure"}')) > failedReloads, 'the refused reload is counted');
    assert.equal(await refusedProbe(), true, 'the running policy (with the probe rule) stays');
    const fine = await send(postern.submissionPort, { subject: 'still flowing' });
    assert.equal(fine.code, 250, fine.last);
    await rm(join(policies, '60-broken.yaml'));
  });
});
