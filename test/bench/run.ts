import { Command, InvalidArgumentError, Option } from 'commander';
import { parseDuration, parseSize } from '../../src/util/units.js';
import type { TlsMode } from './loadGenerator.js';
import type { DnsServer } from '../helpers/dnsServer.js';
import { BENCH_HOSTNAME, BENCH_SENDER, startPostern, type BenchDelivery, type BenchLimitStore, type BenchPolicy, type PosternUnderTest } from './posternProcess.js';
import { BENCH_DKIM_MODES, type BenchDkim } from './benchDkimKeys.js';
import { processGroup, singleProcess } from './processStats.js';
import { ProgressLine } from './progress.js';
import { combineRounds, formatReport, machineInfo, ratiosFor, type BenchReport, type Ratio } from './report.js';
import { runRecoveryScenario, runScenario, runSigningScenario, type RunContext, type ScenarioResult, type Target } from './runScenario.js';
import { findScenario, isPosternOnly, STANDARD_SCENARIOS, withOverrides, type DeliveryMode, type Scenario, type ScenarioOptions } from './scenarios.js';
import { Sink } from './sink.js';
import { startSinkDns } from './sinkDns.js';

/**
 * `npm run bench`: starts a sink and Postern, runs the standard scenarios (or those named),
 * and prints a table, or JSON with --json. With --target it measures any SMTP server instead;
 * with --vs it alternates Postern and another server round by round and prints the ratios.
 * A Postern is started per next hop the chosen scenarios need (smarthost, or MX through a
 * dnsmasq serving the sink's domain), when the first scenario needs it.
 */

const RECIPIENT_DOMAIN = 'sink.bench.test';

const POSTFIX_PROCESSES = 'master|smtpd|cleanup|qmgr|smtp|trivial-rewrite|tlsmgr|anvil|proxymap|bounce';

interface CliOptions {
  scenario: string[];
  target?: string;
  tls?: TlsMode;
  user?: string;
  password?: string;
  concurrency?: number;
  messages?: number;
  duration?: number;
  size?: number;
  recipients?: number;
  connectionPerMessage?: boolean;
  vs?: string;
  vsUser: string;
  vsPassword: string;
  vsTls: TlsMode;
  vsProcess: string;
  rounds: number;
  json?: boolean;
  sinkPort: number;
  policy: BenchPolicy;
  rateLimitStore: BenchLimitStore;
  dkim: BenchDkim;
}

function positiveInt(name: string, allowZero = false) {
  return (text: string): number => {
    const value = Number(text);
    if (!Number.isSafeInteger(value) || value < (allowZero ? 0 : 1)) throw new InvalidArgumentError(`${name} must be a whole number${allowZero ? '' : ' above 0'}, got "${text}"`);
    return value;
  };
}

function wrap<T>(parse: (text: string) => T) {
  return (text: string): T => {
    try {
      return parse(text);
    } catch (err) {
      throw new InvalidArgumentError((err as Error).message);
    }
  };
}

function hostPort(text: string): { host: string; port: number } {
  const match = /^\[?([^\]]+?)\]?:(\d+)$/.exec(text);
  const port = match ? Number(match[2]) : NaN;
  if (!match || port < 1 || port > 65535) throw new InvalidArgumentError(`expected HOST:PORT, got "${text}"`);
  return { host: match[1]!, port };
}

function parseCommandLine(argv: string[]): CliOptions {
  const program = new Command('bench')
    .description('Benchmark Postern (or any SMTP server) with real SMTP: TLS, AUTH, PIPELINING, a durable queue, a next hop.')
    .addOption(
      new Option('--scenario <name>', `scenario to run, repeatable (default: all): ${STANDARD_SCENARIOS.map((s) => s.name).join(', ')}`)
        .argParser((name: string, previous: string[]) => {
          if (!findScenario(name)) throw new InvalidArgumentError(`unknown scenario "${name}"; known: ${STANDARD_SCENARIOS.map((s) => s.name).join(', ')}`);
          return [...previous, name];
        })
        .default([]),
    )
    .option('--target <host:port>', 'benchmark this SMTP server instead of starting Postern')
    .addOption(new Option('--tls <mode>', 'TLS for every scenario').choices(['starttls', 'implicit', 'none']))
    .option('--user <name>', 'AUTH PLAIN user for --target')
    .option('--password <password>', 'AUTH PLAIN password for --target')
    .option('--concurrency <n>', 'parallel sessions (idle-tls-sessions: sessions held open; recovery: delivery workers)', positiveInt('--concurrency'))
    .option('--messages <n>', 'messages per scenario (recovery: messages queued in the spool; dkim-sign: signatures per case)', positiveInt('--messages'))
    .option('--duration <time>', 'send for this long instead of a count, e.g. 10s (dkim-sign: per case)', wrap(parseDuration))
    .option('--size <size>', 'message size, header included, e.g. 5KB, 100KB, 10MB (dkim-sign: this size instead of 5 KB and 1 MB)', wrap(parseSize))
    .option('--recipients <n>', 'recipients per message', positiveInt('--recipients'))
    .option('--connection-per-message', 'one connection per message instead of persistent sessions')
    .option('--vs <host:port>', 'also run every scenario against this server, alternating, and print ratios')
    .option('--vs-user <name>', 'AUTH PLAIN user for --vs', 'perfuser@perf.test')
    .option('--vs-password <password>', 'AUTH PLAIN password for --vs', 'perfpass')
    .addOption(new Option('--vs-tls <mode>', 'TLS towards --vs').choices(['starttls', 'implicit', 'none']).default('starttls'))
    .option('--vs-process <regex>', 'names (/proc/PID/comm) of the --vs server processes whose CPU and memory count', POSTFIX_PROCESSES)
    .option('--rounds <n>', 'with --vs: rounds per side, alternating; the medians are reported', positiveInt('--rounds'), 2)
    .option('--json', 'print the result as JSON on stdout, and nothing else there')
    .option('--sink-port <n>', 'port of the bench sink on 127.0.0.1 (0: any free port)', positiveInt('--sink-port', true), 0)
    .addOption(
      new Option('--policy <policy>', 'the shipped baseline policy (rate-limit maxima raised so they measure cost, not limits), or none')
        .choices(['default', 'none'])
        .default('default'),
    )
    .addOption(new Option('--rate-limit-store <store>', 'where rate limits count; redis starts a redis-server').choices(['memory', 'redis']).default('memory'))
    .addOption(
      new Option('--dkim <keys>', "DKIM keys the started Postern signs the load's messages with (RSA-2048, Ed25519, or both: dual)")
        .choices([...BENCH_DKIM_MODES])
        .default('none'),
    )
    .addHelpText('after', `\nScenarios:\n${STANDARD_SCENARIOS.map((s) => `  ${s.name.padEnd(26)} ${s.description}`).join('\n')}`);
  program.parse(argv);
  const options = program.opts<CliOptions>();
  if (options.messages !== undefined && options.duration !== undefined) program.error('--messages and --duration exclude each other');
  if (options.target) hostPort(options.target);
  if (options.vs) hostPort(options.vs);
  if (options.target && options.vs) program.error('--vs compares against Postern; it cannot be combined with --target');
  if (options.target && options.dkim !== 'none') program.error('--dkim configures the Postern the bench starts; it cannot be combined with --target');
  const other = options.target ? '--target' : options.vs ? '--vs' : undefined;
  const posternOnly = options.scenario.filter((name) => isPosternOnly(findScenario(name)!));
  if (other && posternOnly.length > 0) program.error(`${posternOnly.join(', ')} measure${posternOnly.length === 1 ? 's' : ''} Postern's own delivery, spool or DKIM signer; not with ${other}`);
  return options;
}

function overrides(options: CliOptions): Partial<ScenarioOptions> {
  return {
    tls: options.tls,
    concurrency: options.concurrency,
    messages: options.messages,
    durationMs: options.duration,
    size: options.size,
    recipients: options.recipients,
    connectionPerMessage: options.connectionPerMessage ? true : undefined,
  };
}

function posternTarget(postern: PosternUnderTest): Target {
  return {
    label: 'postern',
    host: '127.0.0.1',
    // Postern has no plaintext listener: "none" meets the STARTTLS one and sees what it says.
    portFor: (tls) => (tls === 'implicit' ? postern.submissionsPort : postern.submissionPort),
    auth: { user: postern.user, password: postern.password },
    measured: singleProcess(postern.pid),
    queuedMessages: () => postern.queuedMessages(),
  };
}

function otherTarget(address: string, auth: { user?: string; password?: string }, tls: TlsMode | undefined, measuredNames?: string): Target {
  const { host, port } = hostPort(address);
  return {
    label: address,
    host,
    portFor: () => port,
    ...(tls ? { tls } : {}),
    ...(auth.user !== undefined ? { auth: { user: auth.user, password: auth.password ?? '' } } : {}),
    ...(measuredNames ? { measured: processGroup(measuredNames) } : {}),
  };
}

async function main(): Promise<void> {
  const options = parseCommandLine(process.argv);
  const comparing = options.target !== undefined || options.vs !== undefined;
  // The default set against another server leaves out what only Postern has.
  const names = options.scenario.length > 0 ? options.scenario : STANDARD_SCENARIOS.filter((s) => !(comparing && isPosternOnly(s))).map((s) => s.name);
  const scenarios: Scenario[] = names.map((name) => withOverrides(findScenario(name)!, overrides(options)));
  const progress = new ProgressLine(process.stderr, !options.json || process.stderr.isTTY === true);
  const startedAt = new Date().toISOString();

  let sink: Sink | undefined;
  const posterns = new Map<DeliveryMode, PosternUnderTest>();
  let dns: DnsServer | undefined;
  const cleanUp = async () => {
    for (const postern of posterns.values()) await postern.stop().catch(() => {});
    await dns?.stop().catch(() => {});
    await sink?.stop().catch(() => {});
  };
  const onSignal = () => {
    progress.finish();
    void cleanUp().finally(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);

  try {
    const sinkPort = (sink = await Sink.start(options.sinkPort)).port;
    const posternFor = async (mode: DeliveryMode): Promise<PosternUnderTest> => {
      const running = posterns.get(mode);
      if (running) return running;
      let delivery: BenchDelivery = { mode: 'smarthost' };
      if (mode === 'mx') {
        dns ??= await startSinkDns(RECIPIENT_DOMAIN);
        delivery = { mode: 'mx', dnsServer: dns.server };
      }
      const started = await startPostern({ sinkPort, policy: options.policy, rateLimitStore: options.rateLimitStore, delivery, dkim: options.dkim });
      posterns.set(mode, started);
      return started;
    };
    const targetFor = async (scenario: Scenario): Promise<Target> =>
      options.target ? otherTarget(options.target, options, options.tls) : posternTarget(await posternFor(scenario.delivery ?? 'smarthost'));
    const vs = options.vs ? otherTarget(options.vs, { user: options.vsUser, password: options.vsPassword }, options.vsTls, options.vsProcess) : undefined;
    const context: RunContext = { sink, progress, ehloName: BENCH_HOSTNAME, from: BENCH_SENDER, recipientDomain: RECIPIENT_DOMAIN };

    const results: ScenarioResult[] = [];
    const ratios: Ratio[] = [];
    for (const scenario of scenarios) {
      if (scenario.kind === 'recovery') {
        results.push(await runRecoveryScenario(scenario, context));
        continue;
      }
      if (scenario.kind === 'signing') {
        results.push(await runSigningScenario(scenario, context));
        continue;
      }
      const primary = await targetFor(scenario);
      if (!vs) {
        results.push(await runScenario(scenario, primary, context));
        continue;
      }
      const own: ScenarioResult[] = [];
      const theirs: ScenarioResult[] = [];
      // Alternating rounds share whatever drifts on the machine between the two sides.
      for (let round = 0; round < options.rounds; round++) {
        own.push(await runScenario(scenario, primary, context));
        theirs.push(await runScenario(scenario, vs, context));
      }
      const mine = combineRounds(own);
      const other = combineRounds(theirs);
      results.push(mine, other);
      if (scenario.kind === 'load') ratios.push(...ratiosFor(mine, other));
    }

    const postern = posterns.values().next().value;
    const report: BenchReport = {
      machine: machineInfo(),
      startedAt,
      postern: postern ? { runner: postern.runner, policy: postern.policy, rateLimitStore: postern.rateLimitStore, dkim: postern.dkim } : null,
      scenarios: results,
      ratios,
    };
    if (sink.withoutId > 0) process.stderr.write(`note: the sink also received ${sink.withoutId} message(s) without an X-Bench-Id\n`);
    process.stdout.write(options.json ? `${JSON.stringify(report, null, 2)}\n` : `${formatReport(report)}\n`);
  } finally {
    await cleanUp();
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`bench failed: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  },
);
