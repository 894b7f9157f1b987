import { spawn, type ChildProcess } from 'node:child_process';
import { constants } from 'node:fs';
import { access, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { ALICE, startTestGateway, type TestGateway } from './gateway.js';
import { sampleMessage } from './messages.js';
import { freePort } from './ports.js';
import { authenticatedClient } from './smtpClient.js';
import { startUpstream, type Upstream } from './upstream.js';

export const REPO = resolve(import.meta.dirname, '../..');
export const CHART_DIR = join(REPO, 'helm/postern');

/** Debian's `prometheus` package installs both; the tests use them as operators would. */
export const PROMTOOL = '/usr/bin/promtool';
export const PROMETHEUS = '/usr/bin/prometheus';

/**
 * Fails (never skips) when a Prometheus binary is not installed, naming the package that
 * provides it: a test suite that silently skips its monitoring checks proves nothing.
 */
export async function requireBinary(path: string): Promise<void> {
  try {
    await access(path, constants.X_OK);
  } catch {
    throw new Error(`${path} is not installed: install Debian's "prometheus" package (apt-get install prometheus)`);
  }
}

// ---------------------------------------------------------------------------------------------
// Metric names in PromQL and in the exposition format
// ---------------------------------------------------------------------------------------------

/** Words PromQL reserves outside function calls (operators, modifiers, grouping, literals). */
const PROMQL_KEYWORDS = new Set(['and', 'or', 'unless', 'by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'offset', 'bool', 'atan2', 'inf', 'nan', 'start', 'end']);

/** Series Prometheus adds to every target itself; the exporter never shows them. */
export const SERIES_ADDED_BY_PROMETHEUS = new Set(['up', 'scrape_duration_seconds', 'scrape_samples_scraped', 'scrape_samples_post_metric_relabeling', 'scrape_series_added']);

/**
 * The metric names a PromQL expression selects: identifiers left after removing string
 * literals, Grafana variables, label matchers, range brackets and grouping label lists, that are
 * not function calls (an identifier followed by "("), keywords, or parts of a number or
 * duration (1e3, 15m).
 */
export function metricNamesIn(expr: string): string[] {
  const stripped = expr
    .replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g, ' ')
    .replace(/\$\{[^}]*\}|\$\w+/g, ' ')
    .replace(/\{[^}]*\}/g, ' ')
    .replace(/\[[^\]]*\]/g, ' ')
    .replace(/\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ');
  const names = new Set<string>();
  for (const match of stripped.matchAll(/[a-zA-Z_:][a-zA-Z0-9_:]*/g)) {
    const word = match[0];
    const before = stripped[match.index - 1] ?? ' ';
    if (/[0-9.]/.test(before)) continue;
    if (stripped.slice(match.index + word.length).trimStart().startsWith('(')) continue;
    if (PROMQL_KEYWORDS.has(word.toLowerCase())) continue;
    names.add(word);
  }
  return [...names];
}

/** The metric names a Grafana Prometheus variable query reads: label_values(selector, label) or query_result(expr). */
export function metricNamesInVariableQuery(query: string): string[] {
  const labelValues = /^\s*label_values\(\s*(.+?)\s*,\s*[a-zA-Z_]\w*\s*\)\s*$/.exec(query);
  if (labelValues) return metricNamesIn(labelValues[1]!);
  const queryResult = /^\s*query_result\((.*)\)\s*$/.exec(query);
  if (queryResult) return metricNamesIn(queryResult[1]!);
  return [];
}

/**
 * Every series name a /metrics page makes queryable: each family from its # TYPE line (with
 * the _bucket, _sum and _count series a histogram or summary expands into, which exist in
 * Prometheus once observed) and every sample line's name.
 */
export function exposedSeriesNames(exposition: string): Set<string> {
  const names = new Set<string>();
  for (const line of exposition.split('\n')) {
    const type = /^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (\w+)/.exec(line);
    if (type) {
      const [, name, kind] = type;
      names.add(name!);
      if (kind === 'histogram') for (const suffix of ['_bucket', '_sum', '_count']) names.add(name! + suffix);
      if (kind === 'summary') for (const suffix of ['_sum', '_count']) names.add(name! + suffix);
      continue;
    }
    const sample = /^([a-zA-Z_:][a-zA-Z0-9_:]*)[{ ]/.exec(line);
    if (sample) names.add(sample[1]!);
  }
  return names;
}

// ---------------------------------------------------------------------------------------------
// A gateway worth scraping
// ---------------------------------------------------------------------------------------------

export interface MetricsGateway {
  readonly postern: TestGateway;
  readonly upstream: Upstream;
  /** host:port of /metrics, as a Prometheus scrape target. */
  readonly metricsTarget: string;
  /** Submits one message as alice and waits until the upstream has it, so delivery series exist too. */
  sendMessage(subject?: string): Promise<void>;
  /** The /metrics page as Prometheus would read it. */
  metricsText(): Promise<string>;
  dispose(): Promise<void>;
}

/** Postern with its HTTP listener on loopback, relaying to a loopback upstream. */
export async function startMetricsGateway(): Promise<MetricsGateway> {
  const upstream = await startUpstream();
  const postern = await startTestGateway({ upstreamPort: upstream.port, extraYaml: 'http: { enabled: true, host: 127.0.0.1, port: 0 }' });
  const address = postern.gateway.httpAddress;
  if (!address) throw new Error('the gateway did not open its HTTP listener although http.enabled is true');
  const metricsTarget = `127.0.0.1:${address.port}`;
  return {
    postern,
    upstream,
    metricsTarget,
    async sendMessage(subject = 'metrics') {
      const before = upstream.messages.length;
      const client = await authenticatedClient(postern.submissionPort, ALICE);
      for (const [command, code] of [['MAIL FROM:<alice@example.com>', 250], ['RCPT TO:<bob@example.net>', 250]] as const) {
        const reply = await client.command(command);
        if (reply.code !== code) throw new Error(`${command} answered ${reply.last}`);
      }
      const reply = await client.data(sampleMessage(subject));
      await client.quit();
      if (reply.code !== 250) throw new Error(`DATA answered ${reply.last}`);
      await upstream.waitFor(before + 1);
    },
    async metricsText() {
      const response = await fetch(`http://${metricsTarget}/metrics`);
      if (response.status !== 200) throw new Error(`/metrics answered ${response.status}`);
      return response.text();
    },
    async dispose() {
      await postern.dispose();
      await upstream.close();
    },
  };
}

// ---------------------------------------------------------------------------------------------
// A real Prometheus server on loopback
// ---------------------------------------------------------------------------------------------

export interface InstantSample {
  metric: Record<string, string>;
  value: number;
}

export interface PrometheusServer {
  /** http://127.0.0.1:PORT */
  readonly url: string;
  /** GET /api/v1/<path> and the `data` of a successful answer; throws with Prometheus's error otherwise. */
  api<T>(path: string, params?: Record<string, string>): Promise<T>;
  /** An instant query returning a vector. */
  query(expr: string): Promise<InstantSample[]>;
  /** Stops the server and removes its configuration and storage. */
  stop(): Promise<void>;
}

/**
 * Starts /usr/bin/prometheus on a free loopback port with a temporary configuration and
 * storage directory, scraping `targets` as job "postern" every `interval` and evaluating
 * `ruleFiles` as often. Nothing remote: no remote write or read, no service discovery, the web
 * UI and API on 127.0.0.1 only. Resolves once /-/ready answers.
 */
export async function startPrometheus(options: { targets: string[]; ruleFiles?: string[]; interval?: string }): Promise<PrometheusServer> {
  await requireBinary(PROMETHEUS);
  const interval = options.interval ?? '1s';
  const dir = await mkdtemp(join(tmpdir(), 'postern-prometheus-'));
  const configFile = join(dir, 'prometheus.yml');
  await writeFile(
    configFile,
    [
      'global:',
      `  scrape_interval: ${interval}`,
      `  evaluation_interval: ${interval}`,
      'rule_files:',
      ...(options.ruleFiles ?? []).map((file) => `  - ${JSON.stringify(file)}`),
      'scrape_configs:',
      '  - job_name: postern',
      `    scrape_interval: ${interval}`,
      `    scrape_timeout: ${interval}`,
      '    static_configs:',
      `      - targets: ${JSON.stringify(options.targets)}`,
      '',
    ].join('\n'),
  );
  try {
    // freePort can lose a race with another process; a server that fails to bind is retried.
    for (let attempt = 1; ; attempt++) {
      const port = await freePort();
      const started = await launch(configFile, join(dir, 'data'), port);
      if (started.ok) return server(started.child, `http://127.0.0.1:${port}`, dir);
      if (attempt >= 3 || !/address already in use/.test(started.output)) {
        throw new Error(`prometheus did not start: ${started.output.trim().split('\n').slice(-5).join('\n')}`);
      }
    }
  } catch (err) {
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
}

async function launch(configFile: string, storage: string, port: number): Promise<{ ok: true; child: ChildProcess } | { ok: false; output: string }> {
  const child = spawn(
    PROMETHEUS,
    [`--config.file=${configFile}`, `--storage.tsdb.path=${storage}`, `--web.listen-address=127.0.0.1:${port}`, '--log.level=warn'],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let output = '';
  child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  let exited = false;
  const exit = new Promise<void>((resolve) =>
    child.once('exit', () => {
      exited = true;
      resolve();
    }),
  );
  const url = `http://127.0.0.1:${port}/-/ready`;
  const deadline = Date.now() + 30_000;
  while (!exited && Date.now() < deadline) {
    const ready = await fetch(url).then((r) => r.status === 200, () => false);
    if (ready) return { ok: true, child };
    await Promise.race([exit, sleep(100)]);
  }
  if (!exited) {
    child.kill('SIGKILL');
    await exit;
    return { ok: false, output: `${output}\n(not ready within 30 s)` };
  }
  return { ok: false, output };
}

function server(child: ChildProcess, url: string, dir: string): PrometheusServer {
  const exited = new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve();
    else child.once('exit', () => resolve());
  });
  async function api<T>(path: string, params: Record<string, string> = {}): Promise<T> {
    const response = await fetch(`${url}/api/v1/${path}?${new URLSearchParams(params)}`);
    const body = (await response.json()) as { status: string; data?: T; error?: string; errorType?: string };
    if (body.status !== 'success') throw new Error(`Prometheus ${path} ${JSON.stringify(params)}: ${body.errorType}: ${body.error}`);
    return body.data as T;
  }
  return {
    url,
    api,
    async query(expr) {
      const data = await api<{ resultType: string; result: Array<{ metric: Record<string, string>; value: [number, string] }> }>('query', { query: expr });
      if (data.resultType !== 'vector') throw new Error(`${expr} returned a ${data.resultType}, not a vector`);
      return data.result.map((sample) => ({ metric: sample.metric, value: Number(sample.value[1]) }));
    },
    async stop() {
      child.kill('SIGTERM');
      const killer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(killer);
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/**
 * Polls `probe` until it answers `{ done }`, for what becomes true after a scrape or a rule
 * evaluation. Past the deadline it throws with `what` and the last
 * observation, which is what a failing test needs to show.
 */
export async function eventually<T>(what: string, probe: () => Promise<{ done: T } | { last: unknown }>, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const result = await probe();
    if ('done' in result) return result.done;
    if (Date.now() > deadline) throw new Error(`${what}: still not the case after ${timeoutMs / 1000} s; last seen: ${JSON.stringify(result.last)}`);
    await sleep(250);
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
