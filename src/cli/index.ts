import { Command, InvalidArgumentError, Option } from 'commander';
import { configPath, ConfigError, loadConfig } from '../config/load.js';
import type { Config } from '../config/schema.js';
import { startGateway } from '../main.js';
import { routeConsoleToLog } from '../util/consoleToLog.js';
import { createLogger } from '../util/logger.js';
import { errorMessage, isPosternError } from '../util/errors.js';
import { formatCertificateInfo, generateCertificateCommand, showCertificateCommand } from './certCommand.js';
import { PolicyLoadError } from '../policy/policyLoadError.js';
import { checkPolicies, formatConfigSummary } from './configSummary.js';
import { formatPolicyTest, runPolicyTest } from './policyTest.js';
import { registerDkimCommands } from './dkimCommands.js';
import { registerQueueCommands } from './queueCommands.js';
import { registerUserCommands } from './userCommands.js';

/**
 * `postern`: the one entry point. Every command takes --config (else POSTERN_CONFIG, else
 * ./postern.yaml) so the CLI, the gateway and the Helm chart read the same file.
 */
const program = new Command()
  .name('postern')
  .description('Outbound mail gateway: authenticated TLS submission in, policy-checked relay out')
  .showHelpAfterError();

const configOption = () => new Option('-c, --config <file>', 'configuration file (default: $POSTERN_CONFIG or ./postern.yaml)');

function wholeNumber(value: string): number {
  if (!/^\d+$/.test(value) || Number(value) < 1) throw new InvalidArgumentError('expected a whole number of at least 1');
  return Number(value);
}

/** Loads the configuration or prints every problem and exits 2. */
function loadOrExit(flag: string | undefined): Config {
  try {
    return loadConfig(configPath(flag)).config;
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
}

program
  .command('start')
  .description('run the gateway')
  .addOption(configOption())
  .action(async (opts: { config?: string }) => {
    const config = loadOrExit(opts.config);
    const logger = createLogger(config.log.level);
    routeConsoleToLog(logger);
    // A bug must not die silently: log it as JSON like everything else, then exit non-zero so
    // the supervisor restarts the process. The spool keeps every accepted message safe.
    for (const event of ['uncaughtException', 'unhandledRejection'] as const) {
      process.on(event, (err: unknown) => {
        logger.fatal({ event, err: err instanceof Error ? err.stack : String(err) }, 'internal error, exiting');
        process.exit(70);
      });
    }
    const gateway = await startGateway(config, { logger, configFile: configPath(opts.config) });

    let stopping = false;
    const stop = (signal: NodeJS.Signals) => {
      if (stopping) {
        logger.warn({ signal }, 'second signal while stopping: exiting now');
        process.exit(1);
      }
      stopping = true;
      logger.info({ signal }, 'signal received, draining');
      gateway.stop().then(
        () => process.exit(0),
        (err: unknown) => {
          logger.error({ err: errorMessage(err) }, 'failed to stop cleanly');
          process.exit(1);
        },
      );
    };
    process.on('SIGTERM', stop);
    process.on('SIGINT', stop);
    process.on('SIGHUP', () => {
      logger.info({ signal: 'SIGHUP' }, 'reloading users, certificate and policy');
      gateway.reload();
    });
  });

program
  .command('check-config')
  .description('validate the configuration and print a summary, or every problem found')
  .addOption(configOption())
  .action(async (opts: { config?: string }) => {
    const path = configPath(opts.config);
    let config: Config;
    try {
      config = loadConfig(path).config;
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      process.stderr.write(`${err.message}\n`);
      process.exitCode = 1;
      return;
    }
    try {
      const rules = await checkPolicies(config);
      process.stdout.write(`${path}: configuration is valid\n${formatConfigSummary(config)}\npolicy: ${config.policies.dir} (${rules} rules)\n`);
    } catch (err) {
      if (!(err instanceof PolicyLoadError)) throw err;
      process.stderr.write(`Invalid policy in ${err.dir}:\n  ${err.lines.join('\n  ')}\n`);
      process.exitCode = 1;
    }
  });

const policyCommand = program.command('policy').description('policy tasks');
policyCommand
  .command('test')
  .description('run the whole policy against one transaction, stage by stage, without sending anything')
  .addOption(configOption())
  .requiredOption('--user <name>', 'the authenticated user, from the users file')
  .requiredOption('--from <address>', 'MAIL FROM')
  .requiredOption('--to <address...>', 'RCPT TO (repeatable)')
  .option('--ip <address>', 'the client address', '192.0.2.1')
  .addOption(new Option('--listener <name>', 'the listener').choices(['submission', 'submissions']).default('submission'))
  .option('--message <file>', 'a message file (.eml) for the data stage; without one, a minimal message')
  .option('--json', 'print the report as JSON', false)
  .action(async (opts: { config?: string; user: string; from: string; to: string[]; ip: string; listener: 'submission' | 'submissions'; message?: string; json: boolean }) => {
    const message = opts.message;
    const config = loadOrExit(opts.config);
    const report = await runPolicyTest(config, {
      user: opts.user,
      from: opts.from,
      to: opts.to,
      ip: opts.ip,
      listener: opts.listener,
      ...(message !== undefined && { messageFile: message }),
    });
    process.stdout.write(opts.json ? `${JSON.stringify(report, null, 2)}\n` : `${formatPolicyTest(report)}\n`);
  });

const cert = program.command('cert').description('TLS certificate tasks');
cert
  .command('generate')
  .description('write a self-signed certificate and key to tls.cert and tls.key')
  .addOption(configOption())
  .option('--force', 'replace existing files', false)
  .option('--days <n>', 'validity in days', wholeNumber, 365)
  .action(async (opts: { config?: string; force: boolean; days: number }) => {
    const config = loadOrExit(opts.config);
    const info = await generateCertificateCommand({
      certPath: config.tls.cert,
      keyPath: config.tls.key,
      hostname: config.hostname,
      force: opts.force,
      days: opts.days,
    });
    process.stdout.write(`wrote ${config.tls.cert} and ${config.tls.key}\n${formatCertificateInfo(info)}\n`);
  });
cert
  .command('show')
  .description('describe the configured certificate')
  .addOption(configOption())
  .action((opts: { config?: string }) => {
    const config = loadOrExit(opts.config);
    process.stdout.write(`${formatCertificateInfo(showCertificateCommand({ certPath: config.tls.cert }))}\n`);
  });

registerUserCommands(program, (flag) => loadOrExit(flag).auth.usersFile);
registerQueueCommands(program, (flag) => loadOrExit(flag).spool.dir);
registerDkimCommands(program, { configPath: (flag) => configPath(flag), loadConfig: loadOrExit });

program.parseAsync(process.argv).catch((err: unknown) => {
  // Expected failures (bad files, refused overwrites, bad arguments such as an existing user
  // name) print one line; anything else is a bug and keeps its stack.
  const expected = isPosternError(err) || err instanceof RangeError || err instanceof PolicyLoadError;
  process.stderr.write(expected ? `postern: ${(err as Error).message}\n` : `${(err as Error)?.stack ?? String(err)}\n`);
  process.exit(1);
});
