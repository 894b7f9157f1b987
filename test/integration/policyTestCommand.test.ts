import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { rm, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { prepareGatewayDir } from '../helpers/gateway.js';

const REPO = resolve(import.meta.dirname, '../..');

describe('postern policy test', () => {
  let prepared: { dir: string; configFile: string };
  before(async () => {
    prepared = await prepareGatewayDir({ upstreamPort: 1 });
  });
  after(async () => {
    await rm(prepared.dir, { recursive: true, force: true });
  });

  const run = (...args: string[]) =>
    spawnSync(process.execPath, ['--import', 'tsx', join(REPO, 'src/cli/index.ts'), 'policy', 'test', '--config', prepared.configFile, ...args], {
      cwd: REPO,
      encoding: 'utf8',
    });

  test('walks every stage with the shipped policy and says the message would be queued', () => {
    const result = run('--user', 'alice', '--from', 'alice@example.com', '--to', 'bob@example.net');
    assert.equal(result.status, 0, result.stderr);
    for (const stage of ['connect:', 'auth:', 'mail:', 'rcpt bob@example.net:', 'data:']) assert.match(result.stdout, new RegExp(`^${stage}`, 'm'));
    assert.match(result.stdout, /envelope-sender-owned\s+sender-identity\s+continue/);
    assert.match(result.stdout, /^result: 250 2\.0\.0 would be queued for 1 recipient/m);
  });

  test('shows which rule refuses a spoofed sender, and why, as JSON too', () => {
    const result = run('--user', 'alice', '--from', 'ceo@example.com', '--to', 'bob@example.net', '--json');
    assert.equal(result.status, 0, result.stderr);
    const report = JSON.parse(result.stdout) as { outcome: string; stages: Array<{ stage: string; decisions: Array<{ rule: string; verdict: string }> }> };
    assert.equal(report.outcome, '550 5.7.1 alice may not send as ceo@example.com');
    const mail = report.stages.find((s) => s.stage === 'mail')!;
    assert.deepEqual(mail.decisions.find((d) => d.verdict === 'reject')?.rule, 'envelope-sender-owned');
    assert.equal(report.stages.some((s) => s.stage === 'data'), false, 'nothing runs after the refusal');
  });

  test('runs the data stage on a message file', async () => {
    const eml = join(prepared.dir, 'invoice.eml');
    await writeFile(
      eml,
      [
        'From: alice@example.com',
        'To: bob@example.net',
        'Subject: invoice',
        'MIME-Version: 1.0',
        'Content-Type: multipart/mixed; boundary="b1"',
        '',
        '--b1',
        'Content-Type: text/plain',
        '',
        'see attached',
        '--b1',
        'Content-Type: application/octet-stream; name="invoice.pdf.exe"',
        'Content-Disposition: attachment; filename="invoice.pdf.exe"',
        'Content-Transfer-Encoding: base64',
        '',
        'TVqQAAMAAAAEAAAA',
        '--b1--',
        '',
      ].join('\r\n'),
    );
    const result = run('--user', 'alice', '--from', 'alice@example.com', '--to', 'bob@example.net', '--message', eml);
    assert.equal(result.status, 0, result.stderr);
    assert.match(result.stdout, /dangerous-attachments\s+headers\s+reject 550 5\.7\.1/);
    assert.match(result.stdout, /^result: 550 5\.7\.1 .*\.exe/m);
  });
});
