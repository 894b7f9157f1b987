import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { measureDkimSigning, type SigningMeasurement } from './dkimSigning.js';
import { closeIdleSessions, LoadGenerator, now, openIdleSessions, type LoadResult, type SessionOptions, type TlsMode } from './loadGenerator.js';
import { PeakRssSampler, type MeasuredServer } from './processStats.js';
import type { ProgressLine } from './progress.js';
import type { Scenario, ScenarioOptions } from './scenarios.js';
import type { DkimAtSink, Sink } from './sink.js';
import { measureSpoolRecovery, type RecoveryMeasurement } from './spoolRecovery.js';
import { percentiles, round, type Percentiles } from './stats.js';

/** A server a scenario runs against: Postern started by the bench, --target, or --vs. */
export interface Target {
  /** "postern", or the HOST:PORT given. */
  label: string;
  host: string;
  portFor(tls: TlsMode): number;
  /** Forces a TLS mode (--vs-tls); otherwise the scenario's. */
  tls?: TlsMode;
  auth?: { user: string; password: string };
  /** Whose CPU and memory to measure; absent for a --target nobody measures. */
  measured?: MeasuredServer;
  /** Messages the target still holds; when known, a scenario ends only once it is 0. */
  queuedMessages?: () => Promise<number>;
}

export interface IdleSessionsResult {
  sessions: number;
  rssBeforeMiB: number | null;
  rssAfterMiB: number | null;
  kibPerSession: number | null;
}

/** One scenario against one target: the report's row, and the JSON's `scenarios[]` entry. */
export interface ScenarioResult {
  name: string;
  target: string;
  options: ScenarioOptions;
  accepted: number;
  delivered: number | null;
  errors: number;
  sessionFailures: number;
  firstErrors: string[];
  elapsedMs: number;
  acceptedPerSecond: number;
  deliveredPerSecond: number | null;
  mailTo250Ms: Percentiles | null;
  /** From the last byte of the message written to the 250 (the spool commit, as the client sees it). */
  dataTo250Ms: Percentiles | null;
  acceptedToDeliveredMs: Percentiles | null;
  cpuMsPerMessage: number | null;
  /**
   * The load generator's own CPU per accepted message (this process). On a small machine the
   * generator shares the cores with the server, so this shows how much of them it took.
   */
  generatorCpuMsPerMessage: number | null;
  peakRssMiB: number | null;
  idleSessions?: IdleSessionsResult;
  /** The recovery scenario's figures (times in ms, heap in MiB). */
  recovery?: RecoveryMeasurement;
  /** The signing scenario's figures, one per algorithm and size. */
  signing?: SigningMeasurement;
  /** For load scenarios: how the messages that reached the sink were DKIM-signed. */
  dkimAtSink?: DkimAtSink;
  /** With --rounds: each round's headline figures; the fields above are their medians. */
  rounds?: Array<Pick<ScenarioResult, 'accepted' | 'errors' | 'acceptedPerSecond' | 'deliveredPerSecond' | 'cpuMsPerMessage'>>;
}

export interface RunContext {
  sink: Sink;
  progress: ProgressLine;
  /** The bench's host name: EHLO name, and the name recovered messages were accepted by. */
  ehloName: string;
  from: string;
  recipientDomain: string;
}

const MiB = 1024 * 1024;
/** How long a target whose queue the bench cannot see gets to show further deliveries. */
const DELIVERY_QUIET_MS = 3000;
/** Upper bound on waiting for a queue to drain, so a stuck next hop cannot hang the run. */
const DRAIN_LIMIT_MS = 300_000;

function sessionOptions(scenario: Scenario, target: Target, context: RunContext): SessionOptions {
  const tls = target.tls ?? scenario.options.tls;
  return {
    host: target.host,
    port: target.portFor(tls),
    tls,
    ...(target.auth ? { auth: target.auth } : {}),
    ehloName: context.ehloName,
    timeoutMs: 30_000,
  };
}

function effectiveOptions(scenario: Scenario, target: Target): ScenarioOptions {
  return { ...scenario.options, tls: target.tls ?? scenario.options.tls };
}

/** A run id without '-', unique enough to keep one round's deliveries apart from another's. */
function newRunId(): string {
  return `b${randomBytes(6).toString('hex')}`;
}

function elapsedText(since: number): string {
  return `${((now() - since) / 1000).toFixed(1)}s`;
}

/**
 * Waits until every accepted message has reached the sink, or the target's queue is empty
 * and no more arrive, or (for a target whose queue is unknown) nothing new has arrived for a
 * few seconds. Then waits for the target's CPU to go quiet, so a round's delivery work is
 * counted in that round and does not spill into the next one.
 */
async function waitForDelivery(target: Target, context: RunContext, runId: string, accepted: number, show: () => void): Promise<void> {
  const started = now();
  let lastCount = -1;
  let lastChange = now();
  while (now() - started < DRAIN_LIMIT_MS) {
    show();
    const delivered = context.sink.delivered(runId);
    if (delivered >= accepted) break;
    if (delivered !== lastCount) {
      lastCount = delivered;
      lastChange = now();
    }
    if (target.queuedMessages) {
      // The queue is empty once every message was delivered or given up; allow the sink's
      // 50 ms report batches to arrive.
      if ((await target.queuedMessages()) === 0 && now() - lastChange > 500) break;
    } else if (now() - lastChange > DELIVERY_QUIET_MS) {
      break;
    }
    await sleep(50);
  }
  if (target.measured) await waitForQuietCpu(target.measured);
}

/** Until the server used at most one clock tick of CPU in each of two 250 ms windows (max 30 s). */
async function waitForQuietCpu(server: MeasuredServer): Promise<void> {
  let quiet = 0;
  let last = server.cpuMs();
  const started = now();
  while (quiet < 2 && now() - started < 30_000) {
    await sleep(250);
    const current = server.cpuMs();
    quiet = current - last <= 10 ? quiet + 1 : 0;
    last = current;
  }
}

/** Sends the scenario's messages and measures acceptance, delivery, CPU and memory. */
export async function runLoadScenario(scenario: Scenario, target: Target, context: RunContext): Promise<ScenarioResult> {
  const runId = newRunId();
  const options = effectiveOptions(scenario, target);
  const generator = new LoadGenerator({
    ...sessionOptions(scenario, target, context),
    concurrency: options.concurrency,
    ...(options.messages !== undefined ? { messages: options.messages } : {}),
    ...(options.durationMs !== undefined ? { durationMs: options.durationMs } : {}),
    size: options.size,
    recipients: options.recipients,
    connectionPerMessage: options.connectionPerMessage,
    from: context.from,
    recipientDomain: context.recipientDomain,
    runId,
  });
  const startedAt = now();
  const show = () => {
    const p = generator.progress();
    context.progress.update(
      `${scenario.name} -> ${target.label}: sent ${p.sent} accepted ${p.accepted} delivered ${context.sink.delivered(runId)} errors ${p.errors} ${elapsedText(startedAt)}`,
    );
  };
  const ticker = setInterval(show, 250);
  const sampler = target.measured ? new PeakRssSampler(target.measured) : undefined;
  const cpuBefore = target.measured?.cpuMs();
  const generatorCpuBefore = process.cpuUsage();
  sampler?.start();
  let load: LoadResult;
  try {
    load = await generator.run();
  } finally {
    clearInterval(ticker);
  }
  await waitForDelivery(target, context, runId, load.accepted, show);
  const generatorCpu = process.cpuUsage(generatorCpuBefore);
  const cpuAfter = target.measured?.cpuMs();
  const peakRss = sampler?.stop();
  show();
  context.progress.finish();
  return {
    ...summarise(scenario.name, target.label, options, load, context.sink.deliveries(runId), {
      cpuMs: cpuBefore !== undefined && cpuAfter !== undefined ? cpuAfter - cpuBefore : undefined,
      peakRss,
      generatorCpuMs: (generatorCpu.user + generatorCpu.system) / 1000,
    }),
    dkimAtSink: context.sink.dkimSignatures(runId),
  };
}

/**
 * accepted/s counts from the start of the load to the last 250; delivered/s from the first
 * MAIL to the last delivery; CPU per message covers acceptance and delivery both.
 */
export function summarise(
  name: string,
  target: string,
  options: ScenarioOptions,
  load: LoadResult,
  deliveries: ReadonlyMap<number, number>,
  cost: { cpuMs: number | undefined; peakRss: number | undefined; generatorCpuMs?: number },
): ScenarioResult {
  const mailTo250: number[] = [];
  const dataTo250: number[] = [];
  const toDelivered: number[] = [];
  let lastAccepted = load.startedAt;
  let firstMail = Infinity;
  let lastDelivery = -Infinity;
  let delivered = 0;
  for (let n = 0; n < load.acceptedAt.length; n++) {
    const mail = load.mailAt[n]!;
    const accepted = load.acceptedAt[n]!;
    if (Number.isFinite(mail)) firstMail = Math.min(firstMail, mail);
    if (!Number.isFinite(accepted)) continue;
    mailTo250.push(accepted - mail);
    const dataEnd = load.dataEndAt[n];
    if (dataEnd !== undefined && Number.isFinite(dataEnd)) dataTo250.push(accepted - dataEnd);
    lastAccepted = Math.max(lastAccepted, accepted);
    const at = deliveries.get(n);
    if (at === undefined) continue;
    delivered++;
    toDelivered.push(at - accepted);
    lastDelivery = Math.max(lastDelivery, at);
  }
  const acceptSeconds = (lastAccepted - load.startedAt) / 1000;
  const deliverSeconds = (lastDelivery - firstMail) / 1000;
  const cpuValid = cost.cpuMs !== undefined && Number.isFinite(cost.cpuMs) && load.accepted > 0;
  return {
    name,
    target,
    options,
    accepted: load.accepted,
    delivered: delivered > 0 ? delivered : null,
    errors: load.errors,
    sessionFailures: load.sessionFailures,
    firstErrors: load.firstErrors,
    elapsedMs: round(load.finishedAt - load.startedAt, 0),
    acceptedPerSecond: acceptSeconds > 0 ? round(load.accepted / acceptSeconds, 1) : 0,
    deliveredPerSecond: delivered > 0 && deliverSeconds > 0 ? round(delivered / deliverSeconds, 1) : null,
    mailTo250Ms: roundPercentiles(percentiles(mailTo250)),
    dataTo250Ms: roundPercentiles(percentiles(dataTo250)),
    acceptedToDeliveredMs: roundPercentiles(percentiles(toDelivered)),
    cpuMsPerMessage: cpuValid ? round(cost.cpuMs! / load.accepted, 3) : null,
    generatorCpuMsPerMessage: cost.generatorCpuMs !== undefined && load.accepted > 0 ? round(cost.generatorCpuMs / load.accepted, 3) : null,
    peakRssMiB: cost.peakRss !== undefined && Number.isFinite(cost.peakRss) ? round(cost.peakRss / MiB, 1) : null,
  };
}

function roundPercentiles(p: Percentiles | null): Percentiles | null {
  return p && { p50: round(p.p50), p95: round(p.p95), p99: round(p.p99) };
}

/** How many TLS handshakes and AUTHs run at once while the idle sessions open. */
const IDLE_OPEN_PARALLEL = 50;
/** Time for the server's memory to settle once every session is open. */
const IDLE_SETTLE_MS = 2000;

/**
 * Opens `concurrency` sessions through TLS and AUTH, holds them idle, and reports the
 * server's RSS before and with all of them open, and the difference per session.
 */
export async function runIdleSessionsScenario(scenario: Scenario, target: Target, context: RunContext): Promise<ScenarioResult> {
  const options = effectiveOptions(scenario, target);
  const startedAt = now();
  const rssBefore = target.measured?.rssBytes();
  const sampler = target.measured ? new PeakRssSampler(target.measured) : undefined;
  sampler?.start();
  const opened = await openIdleSessions(sessionOptions(scenario, target, context), options.concurrency, IDLE_OPEN_PARALLEL, (count) =>
    context.progress.update(`${scenario.name} -> ${target.label}: ${count}/${options.concurrency} sessions open ${elapsedText(startedAt)}`),
  );
  await sleep(IDLE_SETTLE_MS);
  const rssAfter = target.measured?.rssBytes();
  context.progress.update(`${scenario.name} -> ${target.label}: closing ${opened.sessions.length} sessions`);
  await closeIdleSessions(opened.sessions, IDLE_OPEN_PARALLEL);
  const peakRss = sampler?.stop();
  context.progress.finish();
  const sessions = opened.sessions.length;
  const known = (bytes: number | undefined): bytes is number => bytes !== undefined && Number.isFinite(bytes);
  return {
    ...withoutLoad(scenario.name, target.label, options, startedAt),
    errors: opened.failures,
    sessionFailures: opened.failures,
    firstErrors: opened.firstErrors,
    peakRssMiB: known(peakRss) ? round(peakRss / MiB, 1) : null,
    idleSessions: {
      sessions,
      rssBeforeMiB: known(rssBefore) ? round(rssBefore / MiB, 1) : null,
      rssAfterMiB: known(rssAfter) ? round(rssAfter / MiB, 1) : null,
      kibPerSession: known(rssBefore) && known(rssAfter) && sessions > 0 ? round((rssAfter - rssBefore) / 1024 / sessions, 1) : null,
    },
  };
}

/** The fields of a result for a scenario that sends no messages (idle sessions, recovery). */
function withoutLoad(name: string, target: string, options: ScenarioResult['options'], startedAt: number) {
  return {
    name,
    target,
    options,
    accepted: 0,
    delivered: null,
    elapsedMs: round(now() - startedAt, 0),
    acceptedPerSecond: 0,
    deliveredPerSecond: null,
    mailTo250Ms: null,
    dataTo250Ms: null,
    acceptedToDeliveredMs: null,
    cpuMsPerMessage: null,
    generatorCpuMsPerMessage: null,
  } satisfies Partial<ScenarioResult>;
}

/** Used when --duration took the place of the message count: recovery needs a count. */
const DEFAULT_RECOVERY_MESSAGES = 100_000;

/**
 * Fills a spool directory with the scenario's `messages` and times Spool.open() and
 * DeliveryQueue.start() on it, in a process of their own: Postern's spool, with no SMTP and no
 * target server.
 */
export async function runRecoveryScenario(scenario: Scenario, context: Pick<RunContext, 'progress' | 'ehloName' | 'from' | 'recipientDomain'>): Promise<ScenarioResult> {
  const options = { ...scenario.options };
  const messages = options.messages ?? DEFAULT_RECOVERY_MESSAGES;
  const startedAt = now();
  const measured = await measureSpoolRecovery(
    {
      messages,
      size: options.size,
      concurrency: options.concurrency,
      from: context.from,
      recipientDomain: context.recipientDomain,
      hostname: context.ehloName,
    },
    (text) => context.progress.update(`${scenario.name}: ${text} ${elapsedText(startedAt)}`),
  );
  context.progress.finish();
  return {
    ...withoutLoad(scenario.name, 'postern', { ...options, messages }, startedAt),
    errors: 0,
    sessionFailures: 0,
    firstErrors: [],
    peakRssMiB: null,
    recovery: {
      ...measured,
      writeMs: round(measured.writeMs, 0),
      openMs: round(measured.openMs, 1),
      startMs: round(measured.startMs, 1),
      heapBeforeMiB: round(measured.heapBeforeMiB, 1),
      openHeapMiB: round(measured.openHeapMiB, 1),
      startHeapMiB: round(measured.startHeapMiB, 1),
      heapAfterMiB: round(measured.heapAfterMiB, 1),
      rssAfterMiB: round(measured.rssAfterMiB, 1),
    },
  };
}

/** Used when neither a count nor a duration is left (they cannot both be removed from the command line). */
const DEFAULT_SIGNING_DURATION_MS = 2000;

/**
 * Times DkimSigner.sign() in this process for each algorithm and size of the scenario: no
 * SMTP, no Postern process. The bench's own timers are idle meanwhile (the sink and any
 * Postern started earlier wait for load), so this process's CPU time is the signer's.
 */
export async function runSigningScenario(scenario: Scenario, context: Pick<RunContext, 'progress' | 'ehloName' | 'from' | 'recipientDomain'>): Promise<ScenarioResult> {
  if (!scenario.signing) throw new RangeError(`scenario ${scenario.name} names no algorithms and sizes to sign`);
  const options = { ...scenario.options };
  const startedAt = now();
  const measured = await measureDkimSigning({
    algorithms: scenario.signing.algorithms,
    sizes: scenario.signing.sizes,
    ...(options.messages !== undefined ? { iterations: options.messages } : { durationMs: options.durationMs ?? DEFAULT_SIGNING_DURATION_MS }),
    from: context.from,
    recipientDomain: context.recipientDomain,
    hostname: context.ehloName,
    onProgress: (text) => context.progress.update(`${scenario.name}: ${text} ${elapsedText(startedAt)}`),
  });
  context.progress.finish();
  return {
    ...withoutLoad(scenario.name, 'postern', options, startedAt),
    errors: 0,
    sessionFailures: 0,
    firstErrors: [],
    peakRssMiB: null,
    signing: measured,
  };
}

export function runScenario(scenario: Scenario, target: Target, context: RunContext): Promise<ScenarioResult> {
  if (scenario.kind === 'recovery') return runRecoveryScenario(scenario, context);
  if (scenario.kind === 'signing') return runSigningScenario(scenario, context);
  return scenario.kind === 'idle-sessions' ? runIdleSessionsScenario(scenario, target, context) : runLoadScenario(scenario, target, context);
}
