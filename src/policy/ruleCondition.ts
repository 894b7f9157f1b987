import { domainOfAddress } from './match/addresses.js';
import { DomainList } from './match/domains.js';
import { CidrList, parseClientAddress } from './match/networks.js';
import type { WhenSpec } from './policyFile.js';
import { STAGES, type PolicyContext, type Stage } from './types.js';

/**
 * A rule instance's `when`: every listed condition must hold, and within one list any entry
 * will do. A rule without `when` applies to every transaction at its stage.
 */
export type RuleCondition = (ctx: PolicyContext) => boolean;

const always: RuleCondition = () => true;

/** Compiles `when` once at load, so evaluation does no parsing. Assumes the spec was validated. */
export function compileCondition(when: WhenSpec | undefined): RuleCondition {
  if (!when) return always;
  const checks: RuleCondition[] = [];
  if (when.users) {
    // User names are case-sensitive, as the users file and AUTH compare them.
    const users = new Set(when.users);
    checks.push((ctx) => ctx.user !== undefined && users.has(ctx.user.name));
  }
  if (when.groups) {
    const groups = new Set(when.groups);
    checks.push((ctx) => ctx.user !== undefined && ctx.user.groups.some((g) => groups.has(g)));
  }
  if (when.clientCidrs) {
    const networks = new CidrList(when.clientCidrs);
    checks.push((ctx) => {
      const address = parseClientAddress(ctx.client.address);
      return address !== undefined && networks.contains(address);
    });
  }
  if (when.listeners) {
    const listeners = new Set<string>(when.listeners);
    checks.push((ctx) => listeners.has(ctx.listener));
  }
  if (when.senderDomains) {
    const domains = new DomainList(when.senderDomains);
    checks.push((ctx) => {
      // The null sender <> has no domain, so it matches no domain list.
      const domain = ctx.envelope.sender === undefined ? undefined : domainOfAddress(ctx.envelope.sender);
      return domain !== undefined && domains.matches(domain);
    });
  }
  if (when.recipientDomains) {
    const domains = new DomainList(when.recipientDomains);
    const matches = (address: string) => {
      const domain = domainOfAddress(address);
      return domain !== undefined && domains.matches(domain);
    };
    checks.push((ctx) => (ctx.stage === 'rcpt' ? ctx.recipient !== undefined && matches(ctx.recipient) : ctx.envelope.recipients.some(matches)));
  }
  return (ctx) => checks.every((check) => check(ctx));
}

/** The first stage at which each condition can be known: a user after AUTH, a sender after MAIL. */
const KNOWN_FROM: Record<keyof WhenSpec, Stage> = {
  users: 'auth',
  groups: 'auth',
  clientCidrs: 'connect',
  listeners: 'connect',
  senderDomains: 'mail',
  recipientDomains: 'rcpt',
};

/**
 * The conditions of `when` that can never hold at `stage` (a sender domain at connect), each
 * with the reason. Such a rule would silently never run, so the loader refuses it.
 */
export function conditionsUnknownAt(when: WhenSpec | undefined, stage: Stage): Array<{ key: keyof WhenSpec; reason: string }> {
  if (!when) return [];
  const problems: Array<{ key: keyof WhenSpec; reason: string }> = [];
  for (const key of Object.keys(when) as Array<keyof WhenSpec>) {
    const from = KNOWN_FROM[key];
    if (when[key] !== undefined && STAGES.indexOf(stage) < STAGES.indexOf(from)) {
      problems.push({ key, reason: `is not known yet at the ${stage} stage (only from ${from} on), so the rule would never run` });
    }
  }
  return problems;
}
