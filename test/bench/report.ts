import { cpus, arch, release, totalmem, type } from 'node:os';
import { describeBenchDkim, type BenchDkim } from './benchDkimKeys.js';
import type { BenchLimitStore, BenchPolicy, PosternRunner } from './posternProcess.js';
import type { ScenarioResult } from './runScenario.js';
import { median, round, type Percentiles } from './stats.js';

export interface MachineInfo {
  cpus: number;
  model: string;
  memoryGiB: number;
  node: string;
  os: string;
}

/** Postern side by side with the --vs server, for one scenario and one figure. */
export interface Ratio {
  scenario: string;
  metric: 'acceptedPerSecond' | 'deliveredPerSecond' | 'cpuMsPerMessage' | 'mailTo250Ms.p99' | 'dataTo250Ms.p99';
  postern: number | null;
  vs: number | null;
  /** postern / vs: above 1 is better for rates, below 1 is better for CPU and latency. */
  ratio: number | null;
}

export interface BenchReport {
  machine: MachineInfo;
  startedAt: string;
  /** How the bench ran Postern, or null when it ran only against --target. */
  postern: { runner: PosternRunner; policy: BenchPolicy; rateLimitStore: BenchLimitStore; dkim: BenchDkim } | null;
  scenarios: ScenarioResult[];
  ratios: Ratio[];
}

export function machineInfo(): MachineInfo {
  const cores = cpus();
  return {
    cpus: cores.length,
    model: cores[0]?.model.trim() ?? 'unknown',
    memoryGiB: round(totalmem() / 1024 ** 3, 1),
    node: process.version,
    os: `${type()} ${release()} ${arch()}`,
  };
}

function medianPercentiles(values: Array<Percentiles | null>): Percentiles | null {
  const present = values.filter((v): v is Percentiles => v !== null);
  if (present.length === 0) return null;
  return { p50: median(present.map((p) => p.p50))!, p95: median(present.map((p) => p.p95))!, p99: median(present.map((p) => p.p99))! };
}

/**
 * One row from several rounds of the same scenario and target: each figure is the median of
 * the rounds' figures; counts are totals; the rounds' headline figures are kept alongside.
 */
export function combineRounds(rounds: ScenarioResult[]): ScenarioResult {
  const first = rounds[0];
  if (!first) throw new RangeError('combineRounds needs at least one round');
  if (rounds.length === 1) return first;
  const firstErrors = [...new Set(rounds.flatMap((r) => r.firstErrors))].slice(0, 5);
  const deliveredCounts = rounds.map((r) => r.delivered).filter((d): d is number => d !== null);
  return {
    ...first,
    accepted: rounds.reduce((sum, r) => sum + r.accepted, 0),
    delivered: deliveredCounts.length > 0 ? deliveredCounts.reduce((a, b) => a + b, 0) : null,
    errors: rounds.reduce((sum, r) => sum + r.errors, 0),
    sessionFailures: rounds.reduce((sum, r) => sum + r.sessionFailures, 0),
    firstErrors,
    elapsedMs: median(rounds.map((r) => r.elapsedMs))!,
    acceptedPerSecond: median(rounds.map((r) => r.acceptedPerSecond)) ?? 0,
    deliveredPerSecond: median(rounds.map((r) => r.deliveredPerSecond)),
    mailTo250Ms: medianPercentiles(rounds.map((r) => r.mailTo250Ms)),
    dataTo250Ms: medianPercentiles(rounds.map((r) => r.dataTo250Ms)),
    acceptedToDeliveredMs: medianPercentiles(rounds.map((r) => r.acceptedToDeliveredMs)),
    cpuMsPerMessage: median(rounds.map((r) => r.cpuMsPerMessage)),
    generatorCpuMsPerMessage: median(rounds.map((r) => r.generatorCpuMsPerMessage)),
    peakRssMiB: median(rounds.map((r) => r.peakRssMiB)),
    ...(first.dkimAtSink ? { dkimAtSink: sumDkimAtSink(rounds) } : {}),
    rounds: rounds.map((r) => ({
      accepted: r.accepted,
      errors: r.errors,
      acceptedPerSecond: r.acceptedPerSecond,
      deliveredPerSecond: r.deliveredPerSecond,
      cpuMsPerMessage: r.cpuMsPerMessage,
    })),
  };
}

/** The rounds' signed messages and signatures added up, as their accepted counts are. */
function sumDkimAtSink(rounds: ScenarioResult[]): NonNullable<ScenarioResult['dkimAtSink']> {
  const total = { signedMessages: 0, byAlgorithm: {} as Record<string, number> };
  for (const r of rounds) {
    if (!r.dkimAtSink) continue;
    total.signedMessages += r.dkimAtSink.signedMessages;
    for (const [algorithm, count] of Object.entries(r.dkimAtSink.byAlgorithm)) total.byAlgorithm[algorithm] = (total.byAlgorithm[algorithm] ?? 0) + count;
  }
  return total;
}

export function ratiosFor(postern: ScenarioResult, vs: ScenarioResult): Ratio[] {
  const ratio = (a: number | null, b: number | null) => (a !== null && b !== null && b > 0 ? round(a / b, 2) : null);
  const pick: Array<[Ratio['metric'], (r: ScenarioResult) => number | null]> = [
    ['acceptedPerSecond', (r) => r.acceptedPerSecond],
    ['deliveredPerSecond', (r) => r.deliveredPerSecond],
    ['cpuMsPerMessage', (r) => r.cpuMsPerMessage],
    ['mailTo250Ms.p99', (r) => r.mailTo250Ms?.p99 ?? null],
    ['dataTo250Ms.p99', (r) => r.dataTo250Ms?.p99 ?? null],
  ];
  return pick.map(([metric, get]) => ({ scenario: postern.name, metric, postern: get(postern), vs: get(vs), ratio: ratio(get(postern), get(vs)) }));
}

const dash = (value: number | null | undefined, digits = 1): string =>
  value === null || value === undefined || !Number.isFinite(value) ? '-' : value.toFixed(digits);
const triple = (p: Percentiles | null, digits = 1): string => (p ? `${dash(p.p50, digits)}/${dash(p.p95, digits)}/${dash(p.p99, digits)}` : '-');

/** 5000 -> "5 KB", 1000000 -> "1 MB": the bench's sizes are decimal. */
function sizeText(bytes: number): string {
  if (bytes >= 1000 * 1000) return `${round(bytes / (1000 * 1000), 2)} MB`;
  if (bytes >= 1000) return `${round(bytes / 1000, 2)} KB`;
  return `${bytes} B`;
}

function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) => cells.map((c, i) => (i < 2 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

/** The human-readable report: machine, one row per scenario and target, ratio rows, notes. */
export function formatReport(report: BenchReport): string {
  const m = report.machine;
  const out: string[] = [];
  out.push(`Postern bench, ${report.startedAt}`);
  out.push(`machine: ${m.cpus} x ${m.model}, ${m.memoryGiB} GiB, ${m.os}, Node.js ${m.node}`);
  if (report.postern) {
    const p = report.postern;
    out.push(
      `postern: run from ${p.runner === 'dist' ? 'dist/ (built)' : 'src/ through tsx'}; policy: ${p.policy === 'default' ? 'the shipped baseline (rate-limit maxima raised)' : 'none'}; rate limits in ${p.rateLimitStore}; DKIM signing: ${describeBenchDkim(p.dkim)}`,
    );
  }
  out.push('');
  const header = ['scenario', 'target', 'accepted/s', 'delivered/s', 'MAIL->250 ms p50/p95/p99', 'DATA end->250 ms p50/p95/p99', '250->delivered ms p50/p95/p99', 'CPU ms/msg', 'peak RSS MiB', 'bench CPU ms/msg', 'accepted', 'errors'];
  const rows: string[][] = [];
  for (const r of report.scenarios) {
    if (r.recovery) {
      const rec = r.recovery;
      rows.push([r.name, r.target, '-', '-', `${rec.messages} queued`, '', `open ${dash(rec.openMs, 0)} ms, start ${dash(rec.startMs, 0)} ms`, '-', '-', '-', '-', String(r.errors)]);
      continue;
    }
    if (r.signing) {
      rows.push([r.name, r.target, '-', '-', `${r.signing.cases.length} cases, see below`, '', '', '-', '-', '-', '-', String(r.errors)]);
      continue;
    }
    if (r.idleSessions) {
      const idle = r.idleSessions;
      rows.push([r.name, r.target, '-', '-', `${idle.sessions} sessions`, '', `${dash(idle.rssBeforeMiB)} -> ${dash(idle.rssAfterMiB)} MiB`, '-', dash(r.peakRssMiB), '-', '-', String(r.errors)]);
      rows.push(['', '', '', '', '', '', `${dash(idle.kibPerSession)} KiB/session`, '', '', '', '', '']);
      continue;
    }
    rows.push([
      r.name,
      r.target,
      dash(r.acceptedPerSecond),
      dash(r.deliveredPerSecond),
      triple(r.mailTo250Ms),
      triple(r.dataTo250Ms),
      triple(r.acceptedToDeliveredMs),
      dash(r.cpuMsPerMessage, 2),
      dash(r.peakRssMiB),
      dash(r.generatorCpuMsPerMessage, 2),
      String(r.accepted),
      String(r.errors),
    ]);
  }
  for (const scenario of [...new Set(report.ratios.map((r) => r.scenario))]) {
    const get = (metric: Ratio['metric']) => report.ratios.find((r) => r.scenario === scenario && r.metric === metric)?.ratio ?? null;
    const times = (metric: Ratio['metric']) => {
      const value = get(metric);
      return value === null ? '-' : `${value.toFixed(2)}x`;
    };
    rows.push([scenario, 'ratio postern/vs', times('acceptedPerSecond'), times('deliveredPerSecond'), `p99 ${times('mailTo250Ms.p99')}`, `p99 ${times('dataTo250Ms.p99')}`, '', times('cpuMsPerMessage'), '', '', '', '']);
  }
  out.push(table(header, rows));
  for (const r of report.scenarios) {
    if (!r.recovery) continue;
    const rec = r.recovery;
    out.push('');
    out.push(`spool recovery (${r.name}): ${rec.messages} queued messages of ${rec.size} bytes, ${rec.concurrency} delivery workers, warm page cache`);
    out.push(`  Spool.open(), recover and index:            ${dash(rec.openMs, 0).padStart(8)} ms   heap +${dash(rec.openHeapMiB)} MiB`);
    out.push(`  DeliveryQueue.start(), schedule every one:  ${dash(rec.startMs, 1).padStart(8)} ms   heap +${dash(rec.startHeapMiB)} MiB`);
    out.push(`  heap in use ${dash(rec.heapBeforeMiB)} -> ${dash(rec.heapAfterMiB)} MiB, RSS ${dash(rec.rssAfterMiB)} MiB afterwards; writing the spool took ${dash(rec.writeMs / 1000)} s`);
  }
  for (const r of report.scenarios) {
    if (!r.signing) continue;
    out.push('');
    out.push(`DKIM signing (${r.name}): DkimSigner.sign() in the bench's process, no SMTP; each signature reads the message file anew (warm page cache)`);
    out.push('and hashes it (relaxed/relaxed, SHA-256) before signing; signatures one after another, after a warm-up.');
    const rows = r.signing.cases.map((c) => [
      c.algorithm === 'rsa' ? `RSA-${c.keyBits ?? '?'}` : 'Ed25519',
      sizeText(c.size),
      String(c.iterations),
      dash(c.signaturesPerSecond),
      dash(c.cpuMsPerSignature, 3),
      triple(c.msPerSignature, 3),
    ]);
    out.push(
      table(['key', 'message', 'signatures', 'signatures/s', 'CPU ms/signature', 'ms/signature p50/p95/p99'], rows)
        .split('\n')
        .map((line) => `  ${line}`)
        .join('\n'),
    );
  }
  const signingShown = report.postern !== null && report.postern.dkim !== 'none';
  const atSink = report.scenarios.filter((r) => r.dkimAtSink && (signingShown || r.dkimAtSink.signedMessages > 0));
  if (atSink.length > 0) {
    out.push('');
    out.push('DKIM signatures on the messages the sink received:');
    for (const r of atSink) {
      const seen = r.dkimAtSink!;
      const algorithms = Object.entries(seen.byAlgorithm).map(([algorithm, count]) => `${algorithm} ${count}`);
      out.push(`  ${r.name} ${r.target}: ${seen.signedMessages} of ${r.delivered ?? 0} delivered messages signed${algorithms.length > 0 ? ` (${algorithms.join(', ')})` : ''}`);
    }
  }
  const withRounds = report.scenarios.filter((r) => r.rounds);
  if (withRounds.length > 0) {
    out.push('');
    out.push('rounds (medians above): accepted/s per round');
    for (const r of withRounds) out.push(`  ${r.name} ${r.target}: ${r.rounds!.map((x) => dash(x.acceptedPerSecond)).join(', ')}`);
  }
  const failing = report.scenarios.filter((r) => r.firstErrors.length > 0);
  if (failing.length > 0) {
    out.push('');
    out.push('errors:');
    for (const r of failing) for (const text of r.firstErrors) out.push(`  ${r.name} ${r.target}: ${text}`);
  }
  out.push('');
  out.push('accepted/s: 250s after DATA from the start of the load to the last 250. delivered/s: messages at the next hop,');
  out.push('from the first MAIL to the last delivery ("-" when the target does not relay to the bench sink). CPU ms/msg:');
  out.push('server CPU from the start of the load until delivery finished, per accepted message. RSS of a --vs server');
  out.push('is the sum over its processes (shared pages counted in each). bench CPU ms/msg: the load generator\'s own');
  out.push('CPU (it shares the machine with the server; the sink, a separate process, is not counted).');
  out.push('DATA end->250: from the final "." written to the reply, i.e. what the spool commit costs the client.');
  if (report.scenarios.some((r) => r.signing)) {
    out.push('DKIM signing: CPU is this process\'s user + system time per signature (file read, hash and signature together).');
  }
  if (report.scenarios.some((r) => r.recovery)) {
    out.push('spool recovery: in a process of its own; heap is V8 heapUsed after a forced collection, i.e. what stays live.');
  }
  return out.join('\n');
}
