import type { DkimAlgorithm } from '../../src/dkim/dkimKeys.js';
import type { LoadOptions } from './loadGenerator.js';

/** What a scenario fixes about the load; the rest (target, credentials, run id) comes from the run. */
export type ScenarioOptions = Pick<LoadOptions, 'tls' | 'concurrency' | 'messages' | 'durationMs' | 'size' | 'recipients' | 'connectionPerMessage'>;

/** How the Postern under test reaches the sink: as its smarthost, or as the MX of the recipients' domain. */
export type DeliveryMode = 'smarthost' | 'mx';

export interface Scenario {
  /** Stable: the README and issue notes quote these names. */
  name: string;
  description: string;
  /**
   * `load` sends messages; `idle-sessions` opens sessions and measures the memory they hold;
   * `recovery` fills a spool directory with `messages` queued messages of `size` bytes and
   * times opening it and scheduling them on `concurrency` delivery workers (no SMTP);
   * `signing` times DkimSigner.sign() in the bench's process for each of `signing.algorithms`
   * with each of `signing.sizes` (no SMTP): `messages` signatures per case, or as many as take
   * about `durationMs` per case.
   */
  kind: 'load' | 'idle-sessions' | 'recovery' | 'signing';
  /** For `load` against the Postern the bench starts: its next hop. Smarthost unless stated. */
  delivery?: DeliveryMode;
  /** For `signing`: what is measured (a --size on the command line measures that one size instead). */
  signing?: { algorithms: readonly DkimAlgorithm[]; sizes: readonly number[] };
  options: ScenarioOptions;
}

const KB = 1000;
const MB = 1000 * 1000;

/**
 * The standard set, each bounded by a message count so a full run stays within about five
 * minutes on two cores. Options on the command line override these per run.
 */
export const STANDARD_SCENARIOS: readonly Scenario[] = Object.freeze([
  {
    name: 'persistent-starttls-5k',
    description: '20 persistent STARTTLS + AUTH sessions, 5 KB messages',
    kind: 'load',
    options: { tls: 'starttls', concurrency: 20, messages: 3000, size: 5 * KB, recipients: 1, connectionPerMessage: false },
  },
  {
    name: 'per-message-starttls-5k',
    description: 'one STARTTLS + AUTH connection per message, 20 at once, 5 KB',
    kind: 'load',
    options: { tls: 'starttls', concurrency: 20, messages: 1000, size: 5 * KB, recipients: 1, connectionPerMessage: true },
  },
  {
    name: 'persistent-implicit-5k',
    description: '20 persistent implicit-TLS + AUTH sessions, 5 KB messages',
    kind: 'load',
    options: { tls: 'implicit', concurrency: 20, messages: 2000, size: 5 * KB, recipients: 1, connectionPerMessage: false },
  },
  {
    name: 'persistent-starttls-100k',
    description: '20 persistent STARTTLS + AUTH sessions, 100 KB messages',
    kind: 'load',
    options: { tls: 'starttls', concurrency: 20, messages: 500, size: 100 * KB, recipients: 1, connectionPerMessage: false },
  },
  {
    name: 'persistent-starttls-10m',
    description: '4 persistent STARTTLS + AUTH sessions, 10 MB messages',
    kind: 'load',
    options: { tls: 'starttls', concurrency: 4, messages: 20, size: 10 * MB, recipients: 1, connectionPerMessage: false },
  },
  {
    name: 'mx',
    description: 'MX delivery: 20 persistent STARTTLS + AUTH sessions, 5 KB, each message routed by an MX lookup (dnsmasq) to the sink',
    kind: 'load',
    delivery: 'mx',
    options: { tls: 'starttls', concurrency: 20, messages: 2000, size: 5 * KB, recipients: 1, connectionPerMessage: false },
  },
  {
    name: 'recovery',
    description: 'spool recovery: 100,000 queued 1 KB messages; time and heap of Spool.open() and DeliveryQueue.start() (20 workers)',
    kind: 'recovery',
    options: { tls: 'none', concurrency: 20, messages: 100_000, size: 1 * KB, recipients: 1, connectionPerMessage: false },
  },
  {
    name: 'idle-tls-sessions',
    description: '1000 implicit-TLS sessions after EHLO + AUTH, held idle: memory per session',
    kind: 'idle-sessions',
    options: { tls: 'implicit', concurrency: 1000, messages: 0, size: 0, recipients: 0, connectionPerMessage: false },
  },
  {
    name: 'dkim-sign',
    description: 'DkimSigner.sign() in-process, RSA-2048 and Ed25519, 5 KB and 1 MB messages read from a file: signatures/s, CPU per signature',
    kind: 'signing',
    signing: { algorithms: ['rsa', 'ed25519'], sizes: [5 * KB, 1 * MB] },
    // About 2 s per case after its warm-up; size 0: the sizes above.
    options: { tls: 'none', concurrency: 1, durationMs: 2000, size: 0, recipients: 1, connectionPerMessage: false },
  },
]);

/**
 * Scenarios that measure Postern's own machinery (its MX delivery, its spool, its DKIM signer) rather than an
 * SMTP conversation, so they run only against the Postern the bench starts, never --target or --vs.
 */
export function isPosternOnly(scenario: Scenario): boolean {
  return scenario.kind === 'recovery' || scenario.kind === 'signing' || scenario.delivery === 'mx';
}

export function findScenario(name: string): Scenario | undefined {
  return STANDARD_SCENARIOS.find((scenario) => scenario.name === name);
}

/** Overrides from the command line; a count and a duration exclude each other. */
export function withOverrides(scenario: Scenario, overrides: Partial<ScenarioOptions>): Scenario {
  const options: ScenarioOptions = { ...scenario.options };
  for (const [key, value] of Object.entries(overrides) as Array<[keyof ScenarioOptions, never]>) {
    if (value !== undefined) options[key] = value;
  }
  if (overrides.durationMs !== undefined) delete options.messages;
  if (overrides.messages !== undefined) delete options.durationMs;
  const signing = scenario.signing && overrides.size !== undefined ? { ...scenario.signing, sizes: [overrides.size] } : scenario.signing;
  return { ...scenario, options, ...(signing ? { signing } : {}) };
}
