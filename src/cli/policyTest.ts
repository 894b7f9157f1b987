import { createReadStream, readFileSync } from 'node:fs';
import { Readable } from 'node:stream';
import { readUsersFile } from '../auth/usersFile.js';
import type { Config } from '../config/schema.js';
import { createNodeResolver } from '../dns/nodeResolver.js';
import { PolicyEngine, type Decision } from '../policy/engine.js';
import { createLimiterStore } from '../policy/limiterStore.js';
import { loadPolicySet } from '../policy/loader.js';
import type { PolicyContext, PolicyMessage, PolicyUser, Stage, Verdict } from '../policy/types.js';
import { BUILTIN_RULE_TYPES } from '../rules/index.js';
import { parseHeaderFields } from '../smtp/headerBlock.js';
import { systemClock } from '../util/clock.js';
import { silentLogger } from '../util/logger.js';

export interface PolicyTestOptions {
  user: string;
  from: string;
  to: string[];
  ip: string;
  listener: 'submission' | 'submissions';
  /** A message file (CRLF or LF line endings); without one a minimal message From: the sender. */
  messageFile?: string;
}

export interface StageReport {
  stage: Stage;
  recipient?: string;
  decisions: Decision[];
  verdict: Verdict;
}

export interface PolicyTestReport {
  user: PolicyUser;
  stages: StageReport[];
  /** The reply the client would get, or the 250 it would get. */
  outcome: string;
}

/**
 * `postern policy test`: runs the whole policy against one transaction, stage by stage, the
 * way the gateway would, without sending anything. Rate limits count in a private in-memory
 * store, so a dry run never uses up a live limit.
 */
export async function runPolicyTest(config: Config, options: PolicyTestOptions): Promise<PolicyTestReport> {
  const record = readUsersFile(config.auth.usersFile).get(options.user);
  if (!record) throw new RangeError(`No user ${options.user} in ${config.auth.usersFile}`);
  const user: PolicyUser = { name: record.name, senders: record.senders, groups: record.groups };
  const clock = systemClock;
  const limiter = createLimiterStore({ store: 'memory' });
  const deps = { clock, logger: silentLogger(), resolver: createNodeResolver(), limiter };
  const set = await loadPolicySet(config.policies.dir, { builtins: BUILTIN_RULE_TYPES, deps });
  const engine = new PolicyEngine({ set, clock, logger: silentLogger() });

  const bytes = options.messageFile ? readFileSync(options.messageFile) : Buffer.from(minimalMessage(options.from, options.to));
  const text = bytes.toString('utf8').replace(/\r?\n/g, '\r\n');
  const message: PolicyMessage = {
    headers: parseHeaderFields(text.split('\r\n\r\n')[0] ?? '').fields,
    size: Buffer.byteLength(text),
    open: () => (options.messageFile ? createReadStream(options.messageFile) : Readable.from([Buffer.from(text)])),
  };

  const stages: StageReport[] = [];
  const accepted: string[] = [];
  const base = {
    sessionId: 'policy-test',
    client: { address: options.ip, port: 0 },
    listener: options.listener,
    tls: { protocol: 'TLSv1.3' },
    helo: 'policy-test.invalid',
  };
  const run = async (ctx: PolicyContext, recipient?: string): Promise<Verdict> => {
    const outcome = await engine.evaluate(ctx);
    stages.push({ stage: ctx.stage, ...(recipient !== undefined && { recipient }), decisions: outcome.decisions, verdict: outcome.verdict });
    return outcome.verdict;
  };
  const deadline = () => clock.now() + 30_000;
  const refusal = (verdict: Verdict) => (verdict.action === 'continue' ? undefined : `${verdict.code} ${verdict.enhanced} ${verdict.text}`);

  try {
    let verdict = await run({ ...base, stage: 'connect', envelope: { recipients: [] }, deadline: deadline() });
    if (refusal(verdict)) return { user, stages, outcome: refusal(verdict)! };
    verdict = await run({ ...base, stage: 'auth', user, envelope: { recipients: [] }, deadline: deadline() });
    if (refusal(verdict)) return { user, stages, outcome: refusal(verdict)! };
    verdict = await run({ ...base, stage: 'mail', user, envelope: { sender: options.from, recipients: [] }, deadline: deadline() });
    if (refusal(verdict)) return { user, stages, outcome: refusal(verdict)! };
    const refusedRecipients: string[] = [];
    for (const recipient of options.to) {
      verdict = await run(
        { ...base, stage: 'rcpt', user, envelope: { sender: options.from, recipients: [...accepted] }, recipient, deadline: deadline() },
        recipient,
      );
      if (refusal(verdict)) refusedRecipients.push(`${recipient}: ${refusal(verdict)}`);
      else accepted.push(recipient);
    }
    if (accepted.length === 0) return { user, stages, outcome: `no recipient accepted (${refusedRecipients.join('; ')})` };
    verdict = await run({
      ...base,
      stage: 'data',
      queueId: 'POLICYTEST',
      user,
      envelope: { sender: options.from, recipients: accepted },
      message,
      deadline: deadline(),
    });
    if (refusal(verdict)) return { user, stages, outcome: refusal(verdict)! };
    const partial = refusedRecipients.length > 0 ? ` (refused: ${refusedRecipients.join('; ')})` : '';
    return { user, stages, outcome: `250 2.0.0 would be queued for ${accepted.length} recipient(s)${partial}` };
  } finally {
    await limiter.close();
  }
}

function minimalMessage(from: string, to: string[]): string {
  return [
    `From: ${from}`,
    `To: ${to.join(', ')}`,
    'Subject: postern policy test',
    `Date: ${new Date().toUTCString()}`,
    `Message-ID: <policy-test.${Date.now()}@postern.invalid>`,
    '',
    'A message made up by postern policy test.',
    '',
  ].join('\r\n');
}

/** The human-readable report: one block per stage, one line per rule that ran. */
export function formatPolicyTest(report: PolicyTestReport): string {
  const lines = [`user ${report.user.name} (senders: ${report.user.senders.join(', ') || '-'}; groups: ${report.user.groups.join(', ') || '-'})`];
  for (const stage of report.stages) {
    lines.push(`${stage.stage}${stage.recipient ? ` ${stage.recipient}` : ''}:`);
    if (stage.decisions.length === 0) lines.push('  (no rules)');
    for (const d of stage.decisions) {
      const what = d.verdict === 'continue' ? 'continue' : `${d.verdict}${d.code ? ` ${d.code} ${d.enhanced ?? ''}` : ''}`;
      lines.push(`  ${d.rule.padEnd(28)} ${d.type.padEnd(18)} ${(d.mode === 'monitor' ? `${what} (monitor)` : what).padEnd(22)} ${d.ms.toFixed(1).padStart(6)} ms${d.reason ? `  ${d.reason}` : ''}`);
    }
  }
  lines.push(`result: ${report.outcome}`);
  return lines.join('\n');
}
