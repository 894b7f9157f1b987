import { collectDefaultMetrics, Counter, Registry } from 'prom-client';

/**
 * Every metric Postern exports, declared once (DESIGN.md, "Metrics"): prefix postern_, base
 * units, counters ending in _total, labels with few values: rule names, verdicts, modes,
 * results, never a user, an address or an IP.
 */
export interface Metrics {
  readonly registry: Registry;
  /** One per rule that ran, by rule, verdict (continue, reject, defer, error) and mode. */
  readonly policyDecisions: Counter<'rule' | 'verdict' | 'mode'>;
  /** Rules that threw, timed out or answered something invalid. */
  readonly policyRuleErrors: Counter<'rule'>;
  /** Policy reloads (directory change or SIGHUP) by result. */
  readonly policyReloads: Counter<'result'>;
  /** Rate-limit store switches between Redis and the in-memory fallback. */
  readonly rateLimitFallbacks: Counter<'state'>;
}

/** A registry of Postern's own (not prom-client's global one), with Node's process metrics. */
export function createMetrics(): Metrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  return {
    registry,
    policyDecisions: new Counter({
      name: 'postern_policy_decisions_total',
      help: 'Policy rule evaluations by rule, verdict and mode.',
      labelNames: ['rule', 'verdict', 'mode'] as const,
      registers: [registry],
    }),
    policyRuleErrors: new Counter({
      name: 'postern_policy_rule_errors_total',
      help: 'Policy rules that threw, passed their deadline or answered an invalid verdict.',
      labelNames: ['rule'] as const,
      registers: [registry],
    }),
    policyReloads: new Counter({
      name: 'postern_policy_reloads_total',
      help: 'Policy reloads by result (success, failure).',
      labelNames: ['result'] as const,
      registers: [registry],
    }),
    rateLimitFallbacks: new Counter({
      name: 'postern_rate_limit_store_fallbacks_total',
      help: 'Rate-limit store switches: fallback (Redis unreachable, counting in memory) and recovered.',
      labelNames: ['state'] as const,
      registers: [registry],
    }),
  };
}
