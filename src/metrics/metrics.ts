import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { Clock } from '../util/clock.js';

/**
 * Every metric Postern exports, declared once (DESIGN.md, "Metrics"): prefix postern_, base
 * units, counters ending in _total, labels with few values: listener names, rule names,
 * verdicts, modes, results, never a user, an address or an IP. The dashboard and the alert
 * rules query these names exactly.
 */
export interface Metrics {
  readonly registry: Registry;

  /** SMTP sessions accepted (greeted with 220) after the pre-TLS guard, the connection limits and the connect-stage policy. */
  readonly connections: Counter<'listener'>;
  /** Accepted sessions still open. */
  readonly connectionsActive: Gauge<'listener'>;
  /** Connections Postern ended because of a limit or the policy, by reason (see CONNECTION_REFUSAL_REASONS). */
  readonly connectionsRefused: Counter<'listener' | 'reason'>;
  /** TLS sessions established, implicit or after STARTTLS, by protocol version. */
  readonly tlsSessions: Counter<'listener' | 'version'>;
  /** TLS handshakes that failed (a client that merely hung up mid-handshake is not counted). */
  readonly tlsHandshakeFailures: Counter<'listener'>;

  /** AUTH attempts by mechanism (PLAIN, LOGIN) and result (see AUTH_RESULTS). */
  readonly authAttempts: Counter<'mechanism' | 'result'>;
  /** Failed-login lockouts that began, by what was locked: a client IP or a user name. */
  readonly authLockouts: Counter<'scope'>;

  /** Messages whose DATA was received to its end, whatever the reply. */
  readonly messagesReceived: Counter;
  /** Messages answered 250 after DATA: in the spool. */
  readonly messagesAccepted: Counter;
  /** Refusals at MAIL, RCPT and DATA; reason is the refusing rule's name or a fixed word (REJECTION_REASONS). */
  readonly messagesRejected: Counter<'stage' | 'reason'>;
  /** Size of accepted messages as the client sent them. */
  readonly messageSize: Histogram;

  /** One per rule that ran, by rule, verdict (continue, reject, defer, error) and mode. */
  readonly policyDecisions: Counter<'rule' | 'verdict' | 'mode'>;
  /** Rules that threw, timed out or answered something invalid. */
  readonly policyRuleErrors: Counter<'rule'>;
  /** Policy reloads (directory change or SIGHUP) by result. */
  readonly policyReloads: Counter<'result'>;
  /** Enforced rate-limit rules that deferred a client, by rule name. */
  readonly rateLimitHits: Counter<'rule'>;
  /** Rate-limit store switches between Redis and the in-memory fallback. */
  readonly rateLimitFallbacks: Counter<'state'>;

  /** Messages in the spool, read from the spool at each scrape. */
  readonly spoolMessages: Gauge;
  /** Bytes of message data in the spool. */
  readonly spoolBytes: Gauge;
  /** Age of the oldest spooled message; 0 when the spool is empty. */
  readonly spoolOldestMessageAge: Gauge;

  /** Delivery attempts per recipient, by result (delivered, deferred, failed). */
  readonly deliveryAttempts: Counter<'result'>;
  /** From the 250 after DATA to the attempt that delivered, per delivered recipient. */
  readonly deliveryLatency: Histogram;
  /** Delivery status notifications queued for senders, by kind (bounce, delay). */
  readonly notifications: Counter<'kind'>;

  /** When the certificate the listeners present stops being valid, in Unix seconds. */
  readonly certificateNotAfter: Gauge;
  /** Reloads of the users file and of the certificate, by result. */
  readonly reloads: Counter<'what' | 'result'>;

  /** Read the spool gauges from `source` at each scrape, ages measured with `clock`. */
  watchSpool(source: SpoolStatsSource, clock: Clock): void;
}

/** What the spool gauges read: Spool.stats(). */
export interface SpoolStatsSource {
  stats(): { messages: number; bytes: number; oldestReceivedAt?: number };
}

export const CONNECTION_REFUSAL_REASONS = ['too-many', 'too-many-from-address', 'tls-timeout', 'policy'] as const;
export type ConnectionRefusalReason = (typeof CONNECTION_REFUSAL_REASONS)[number];

/** `refused`: the password was right but the auth-stage policy refused the login. */
export const AUTH_RESULTS = ['success', 'invalid', 'locked', 'error', 'refused'] as const;
export type AuthResult = (typeof AUTH_RESULTS)[number];

/** The fixed words for rejections no policy rule made, per stage where each can happen. */
export const REJECTION_REASONS = {
  mail: ['tls-required', 'auth-required', 'syntax', 'unsupported-parameter', 'local-error'],
  rcpt: ['syntax', 'unsupported-parameter', 'too-many-recipients', 'local-error'],
  data: ['size', 'bare-line-ending', 'spool', 'local-error'],
} as const;
export type RejectionStage = keyof typeof REJECTION_REASONS;

export const DELIVERY_RESULTS = ['delivered', 'deferred', 'failed'] as const;
export const RELOAD_TARGETS = ['users', 'certificate'] as const;
export const RELOAD_RESULTS = ['success', 'failure'] as const;
export const LOCKOUT_SCOPES = ['ip', 'user'] as const;
export const AUTH_MECHANISMS = ['PLAIN', 'LOGIN'] as const;
export const TLS_VERSIONS = ['TLSv1.2', 'TLSv1.3'] as const;

const KIB = 1024;
const MIB = 1024 * KIB;
/** 1 KiB to 50 MiB, about a factor of four apart: mail sizes spread over orders of magnitude. */
const MESSAGE_SIZE_BUCKETS = [KIB, 4 * KIB, 16 * KIB, 64 * KIB, 256 * KIB, MIB, 4 * MIB, 10 * MIB, 25 * MIB, 50 * MIB];
/** 10 ms (a smarthost next door) to 4 hours (a message retried through an outage). */
const DELIVERY_LATENCY_BUCKETS = [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 1800, 3600, 7200, 14400];

/** A registry of Postern's own (not prom-client's global one), with Node's process metrics. */
export function createMetrics(): Metrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  // prom-client names these three gauges with _total, which Prometheus reserves for counters
  // (promtool check metrics refuses them); each is the sum of the same family without the
  // suffix (nodejs_active_handles{type} and so on), so nothing is lost.
  for (const misnamed of ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total']) {
    registry.removeSingleMetric(misnamed);
  }
  const registers = [registry];

  // The spool's index is in memory: a scrape costs a walk over the envelopes, no disk access.
  let spool: { source: SpoolStatsSource; clock: Clock } | undefined;

  const metrics: Metrics = {
    registry,
    connections: new Counter({
      name: 'postern_connections_total',
      help: 'SMTP sessions accepted (greeted) after the pre-TLS guard, the connection limits and the connect-stage policy.',
      labelNames: ['listener'] as const,
      registers,
    }),
    connectionsActive: new Gauge({
      name: 'postern_connections_active',
      help: 'Accepted SMTP sessions currently open.',
      labelNames: ['listener'] as const,
      registers,
    }),
    connectionsRefused: new Counter({
      name: 'postern_connections_refused_total',
      help: 'Connections ended by a limit or the policy: too-many, too-many-from-address, tls-timeout, policy.',
      labelNames: ['listener', 'reason'] as const,
      registers,
    }),
    tlsSessions: new Counter({
      name: 'postern_tls_sessions_total',
      help: 'TLS sessions established (implicit TLS or STARTTLS), by protocol version.',
      labelNames: ['listener', 'version'] as const,
      registers,
    }),
    tlsHandshakeFailures: new Counter({
      name: 'postern_tls_handshake_failures_total',
      help: 'TLS handshakes that failed.',
      labelNames: ['listener'] as const,
      registers,
    }),
    authAttempts: new Counter({
      name: 'postern_auth_attempts_total',
      help: 'AUTH attempts by mechanism and result (success, invalid, locked, error, refused by policy).',
      labelNames: ['mechanism', 'result'] as const,
      registers,
    }),
    authLockouts: new Counter({
      name: 'postern_auth_lockouts_total',
      help: 'Failed-login lockouts that began, by scope (ip, user).',
      labelNames: ['scope'] as const,
      registers,
    }),
    messagesReceived: new Counter({
      name: 'postern_messages_received_total',
      help: 'Messages whose DATA was received to its end, whatever the reply.',
      registers,
    }),
    messagesAccepted: new Counter({
      name: 'postern_messages_accepted_total',
      help: 'Messages accepted into the spool (250 after DATA).',
      registers,
    }),
    messagesRejected: new Counter({
      name: 'postern_messages_rejected_total',
      help: "Refusals at MAIL, RCPT and DATA, by stage and reason (the refusing policy rule's name, or a fixed word).",
      labelNames: ['stage', 'reason'] as const,
      registers,
    }),
    messageSize: new Histogram({
      name: 'postern_message_size_bytes',
      help: 'Size of accepted messages as received.',
      buckets: MESSAGE_SIZE_BUCKETS,
      registers,
    }),
    policyDecisions: new Counter({
      name: 'postern_policy_decisions_total',
      help: 'Policy rule evaluations by rule, verdict and mode.',
      labelNames: ['rule', 'verdict', 'mode'] as const,
      registers,
    }),
    policyRuleErrors: new Counter({
      name: 'postern_policy_rule_errors_total',
      help: 'Policy rules that threw, passed their deadline or answered an invalid verdict.',
      labelNames: ['rule'] as const,
      registers,
    }),
    policyReloads: new Counter({
      name: 'postern_policy_reloads_total',
      help: 'Policy reloads by result (success, failure).',
      labelNames: ['result'] as const,
      registers,
    }),
    rateLimitHits: new Counter({
      name: 'postern_rate_limit_hits_total',
      help: 'Enforced rate-limit rules that deferred a client, by rule.',
      labelNames: ['rule'] as const,
      registers,
    }),
    rateLimitFallbacks: new Counter({
      name: 'postern_rate_limit_store_fallbacks_total',
      help: 'Rate-limit store switches: fallback (Redis unreachable, counting in memory) and recovered.',
      labelNames: ['state'] as const,
      registers,
    }),
    spoolMessages: new Gauge({
      name: 'postern_spool_messages',
      help: 'Messages in the spool.',
      registers,
      collect() {
        if (spool) this.set(spool.source.stats().messages);
      },
    }),
    spoolBytes: new Gauge({
      name: 'postern_spool_bytes',
      help: 'Bytes of message data in the spool.',
      registers,
      collect() {
        if (spool) this.set(spool.source.stats().bytes);
      },
    }),
    spoolOldestMessageAge: new Gauge({
      name: 'postern_spool_oldest_message_age_seconds',
      help: 'Age of the oldest message in the spool; 0 when it is empty.',
      registers,
      collect() {
        if (!spool) return;
        const oldest = spool.source.stats().oldestReceivedAt;
        this.set(oldest === undefined ? 0 : Math.max(0, spool.clock.now() - oldest) / 1000);
      },
    }),
    deliveryAttempts: new Counter({
      name: 'postern_delivery_attempts_total',
      help: 'Delivery attempts per recipient, by result (delivered, deferred, failed).',
      labelNames: ['result'] as const,
      registers,
    }),
    notifications: new Counter({
      name: 'postern_notifications_total',
      help: 'Delivery status notifications queued for senders, by kind (bounce: recipients failed; delay: still undelivered).',
      labelNames: ['kind'] as const,
      registers,
    }),
    deliveryLatency: new Histogram({
      name: 'postern_delivery_latency_seconds',
      help: 'From acceptance (250 after DATA) to delivery, per delivered recipient.',
      buckets: DELIVERY_LATENCY_BUCKETS,
      registers,
    }),
    certificateNotAfter: new Gauge({
      name: 'postern_tls_certificate_not_after_timestamp_seconds',
      help: 'End of validity of the TLS certificate in use, in Unix seconds.',
      registers,
    }),
    reloads: new Counter({
      name: 'postern_reloads_total',
      help: 'Reloads of the users file and the TLS certificate, by result (success, failure).',
      labelNames: ['what', 'result'] as const,
      registers,
    }),
    watchSpool(source, clock) {
      spool = { source, clock };
    },
  };
  zeroKnownSeries(metrics);
  return metrics;
}

/**
 * Series whose label values are known in advance exist from the first scrape at 0, so that a
 * rate() over them, an alert or a dashboard panel has a series to work on before the first event.
 */
function zeroKnownSeries(metrics: Metrics): void {
  for (const mechanism of AUTH_MECHANISMS) for (const result of AUTH_RESULTS) metrics.authAttempts.inc({ mechanism, result }, 0);
  for (const scope of LOCKOUT_SCOPES) metrics.authLockouts.inc({ scope }, 0);
  for (const [stage, reasons] of Object.entries(REJECTION_REASONS)) for (const reason of reasons) metrics.messagesRejected.inc({ stage, reason }, 0);
  for (const result of DELIVERY_RESULTS) metrics.deliveryAttempts.inc({ result }, 0);
  for (const what of RELOAD_TARGETS) for (const result of RELOAD_RESULTS) metrics.reloads.inc({ what, result }, 0);
  for (const result of RELOAD_RESULTS) metrics.policyReloads.inc({ result }, 0);
}

/** The per-listener series, at 0, for each listener that is enabled. */
export function zeroListenerSeries(metrics: Metrics, listeners: readonly string[]): void {
  for (const listener of listeners) {
    metrics.connections.inc({ listener }, 0);
    metrics.connectionsActive.set({ listener }, 0);
    metrics.tlsHandshakeFailures.inc({ listener }, 0);
    for (const reason of CONNECTION_REFUSAL_REASONS) metrics.connectionsRefused.inc({ listener, reason }, 0);
    for (const version of TLS_VERSIONS) metrics.tlsSessions.inc({ listener, version }, 0);
  }
}
