import type { Readable } from 'node:stream';
import type { Clock } from '../util/clock.js';
import type { Logger } from '../util/logger.js';

/**
 * The rule interface (DESIGN.md, "Policy rules"): what a rule sees, what it may answer, and
 * what it may touch. Built-in rules (src/rules/) and operators' own modules (policies/*.mjs)
 * implement the same shapes.
 */

/** The SMTP stages a rule can run at, in the order a message meets them. */
export const STAGES = ['connect', 'auth', 'mail', 'rcpt', 'data'] as const;
export type Stage = (typeof STAGES)[number];

export type ListenerName = 'submission' | 'submissions';

export interface PolicyUser {
  name: string;
  senders: readonly string[];
  groups: readonly string[];
}

/** One header field as it appears in the message, unfolded, in order. */
export interface HeaderField {
  /** As written, e.g. "Message-ID". */
  name: string;
  /** Lower-case name, for lookups. */
  key: string;
  /** The value with folding undone and surrounding white space trimmed (not MIME-decoded). */
  value: string;
}

/** The message at the data stage: header fields parsed, the whole message readable again. */
export interface PolicyMessage {
  headers: readonly HeaderField[];
  /** Total size in bytes, as received (before Postern's own headers). */
  size: number;
  /** The message as received, from its first byte; each call opens a new stream. */
  open(): Readable;
}

/**
 * A read-only view of the stage. Fields fill in as the session goes on: `user` from the auth
 * stage on, `envelope.sender` from mail on, `recipient` only at rcpt, `message` only at data.
 */
export interface PolicyContext {
  readonly stage: Stage;
  readonly sessionId: string;
  /** Assigned when DATA starts; present at the data stage. */
  readonly queueId?: string;
  readonly client: { readonly address: string; readonly port: number };
  readonly listener: ListenerName;
  readonly tls?: { readonly protocol?: string; readonly cipher?: string };
  readonly user?: PolicyUser;
  readonly helo?: string;
  readonly envelope: {
    /** '' for the null sender <>. */
    readonly sender?: string;
    /** Recipients accepted so far (at rcpt: not yet including `recipient`). */
    readonly recipients: readonly string[];
    /** The SIZE= the client declared at MAIL, if any. */
    readonly declaredSize?: number;
  };
  /** The recipient being decided, at the rcpt stage. */
  readonly recipient?: string;
  readonly message?: PolicyMessage;
  /** Milliseconds since the epoch by which the rule must have answered. */
  readonly deadline: number;
  /**
   * Aborted when the rule's time is up: the engine no longer waits for it, so work it still
   * does (reading the message, DNS look-ups) should stop. Absent outside the engine.
   */
  readonly signal?: AbortSignal;
}

export interface HeaderToAdd {
  name: string;
  value: string;
}

export interface Annotations {
  /** Header fields to add to the message (at the data stage; ignored before). */
  headers?: HeaderToAdd[];
  /** Short labels for logs, e.g. "bulk". Never user data. */
  tags?: string[];
}

export interface Refusal {
  action: 'reject' | 'defer';
  /** 5xx for reject, 4xx for defer. */
  code: number;
  /** RFC 3463, e.g. "5.7.1"; its class must match the code's. */
  enhanced: string;
  /** What the user can act on: "alice may not send as ceo@example.com". Never internals. */
  text: string;
  annotations?: Annotations;
}

export type Verdict = { action: 'continue'; annotations?: Annotations } | Refusal;

export const CONTINUE: Verdict = Object.freeze({ action: 'continue' });

/** A DNS resolver in mailauth's shape: resolve(name, rrtype) resolving to the records. */
export type DnsResolver = (name: string, rrtype: string) => Promise<unknown>;

/** Counters for rate limits, memory or Redis, shared by every rule that counts. */
export interface LimiterStore {
  /**
   * Count `points` against `key` in a window of `windowMs`; resolves with whether the limit of
   * `limit` points is now exceeded and, if so, when the window ends.
   */
  consume(key: string, points: number, limit: number, windowMs: number): Promise<{ allowed: boolean; resetAt: number }>;
}

/** What a rule may touch. Never globals: a rule is tested alone with fakes for each. */
export interface RuleDeps {
  clock: Clock;
  logger: Logger;
  resolver: DnsResolver;
  limiter: LimiterStore;
  /**
   * Postern's DKIM signer, as far as rules need it: the d= it will sign a message From
   * `fromDomain` (lower-case ASCII) with, or undefined when it has no key for it. Absent: Postern signs nothing.
   */
  signing?: { signingDomainFor(fromDomain: string): string | undefined };
}

export interface Rule {
  /** Never throws for a policy outcome; a throw is a fault (451 4.3.0, onError applies). */
  evaluate(ctx: PolicyContext): Verdict | Promise<Verdict>;
}

/** A parameter schema: a zod schema, or a plain function returning the params or throwing. */
export type ParamsSchema<P> = { safeParse(input: unknown): { success: true; data: P } | { success: false; error: { issues: Array<{ path: PropertyKey[]; message: string }> } } } | ((input: unknown) => P);

/** A rule type: what a module under src/rules/ (or policies/*.mjs) exports as its default. */
export interface RuleType<P = unknown> {
  /** kebab-case, unique. */
  type: string;
  /** Where it may run; the first is the default when a rule instance names no stage. */
  stages: readonly Stage[];
  params: ParamsSchema<P>;
  /** One line for `postern policy` listings. */
  description?: string;
  /**
   * Build one instance. `instance` says which rule instance of a policy file this is: its
   * `name` (for texts such as "rate limit 'per-user-hourly' reached", and to keep the state
   * of two instances of one type apart) and the `stage` it runs at, so a type can refuse at
   * load a stage where its params make no sense. The engine passes it; it is optional so that
   * a type (or a test) that needs neither can leave it out.
   */
  create(params: P, deps: RuleDeps, instance?: RuleInstance): Rule;
}

/** Which rule instance create() is building (see RuleType.create). */
export interface RuleInstance {
  /** The instance's unique `name` from the policy file. */
  name: string;
  /** The stage it runs at: the one the policy file names, else the type's first. */
  stage?: Stage;
}
