import { existsSync } from 'node:fs';
import { dirname, isAbsolute, join, relative, resolve } from 'node:path';
import type { Writable } from 'node:stream';
import { InvalidArgumentError, Option, type Command } from 'commander';
import type { Config } from '../config/schema.js';
import { generateDkimKey } from '../dkim/keyGeneration.js';
import { dkimRecordText, zoneFileLine, type DkimAlgorithm } from '../dkim/dnsRecord.js';
import { checkPublishedKeys, type PublicationCheck, type PublicationStatus } from '../dkim/publishedKeyCheck.js';
import { createNodeResolver } from '../dns/nodeResolver.js';
import type { DnsResolver } from '../policy/types.js';
import { writeFileAtomic } from '../util/atomicFile.js';
import { PosternError } from '../util/errors.js';

/**
 * `postern dkim keygen|check`: create a signing key and the DNS record to publish for it, and
 * check that what DNS publishes is the key the gateway signs with. A gateway that signs with a
 * key receivers cannot find fails DKIM everywhere, so check before marking a key active.
 */

export interface DkimCommandIo {
  stdout: Writable;
  stderr: Writable;
}

export interface DkimCommandDeps {
  /** The configuration file --config names (absolute); keys are written next to it. */
  configPath(configFlag?: string): string;
  /** The loaded configuration (exits on an invalid one). */
  loadConfig(configFlag?: string): Config;
  /** The resolver for `check`; by default Node's, asking `dns.servers` or the system's. */
  resolver?(servers: readonly string[]): DnsResolver;
}

/** As the configuration schema accepts them: a DNS name, and a selector of one or more labels. */
const DOMAIN = /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;
const SELECTOR = /^[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*$/;

function domainArgument(value: string): string {
  const domain = value.replace(/\.$/, '').toLowerCase();
  if (!DOMAIN.test(domain)) throw new InvalidArgumentError('expected a domain name, e.g. example.com');
  return domain;
}

function selectorArgument(value: string): string {
  if (!SELECTOR.test(value)) throw new InvalidArgumentError('expected a DNS label (letters, digits, hyphens), e.g. s2026');
  return value;
}

function bitsArgument(value: string): number {
  if (!/^\d+$/.test(value)) throw new InvalidArgumentError('expected a number of bits, e.g. 2048');
  return Number(value);
}

export function registerDkimCommands(
  program: Command,
  deps: DkimCommandDeps,
  io: DkimCommandIo = { stdout: process.stdout, stderr: process.stderr },
): void {
  const say = (text: string) => io.stdout.write(`${text}\n`);
  const configOption = () => new Option('-c, --config <file>', 'configuration file (default: $POSTERN_CONFIG or ./postern.yaml)');
  const dkim = program.command('dkim').description('DKIM signing keys: create them and check their DNS records');

  dkim
    .command('keygen')
    .description('write a new private key (mode 0600) and print the DNS TXT record to publish and the configuration to add')
    .requiredOption('--domain <domain>', 'the signing domain (d=)', domainArgument)
    .requiredOption('--selector <selector>', 'the selector (s=): the record goes at SELECTOR._domainkey.DOMAIN', selectorArgument)
    .addOption(new Option('--algorithm <algorithm>', 'key type').choices(['rsa', 'ed25519']).default('rsa'))
    .option('--bits <n>', 'RSA key size (default 2048)', bitsArgument)
    .option('--out <file>', 'where to write the key (default: certs/dkim/DOMAIN.SELECTOR.key next to the configuration file)')
    .option('--force', 'replace an existing file', false)
    .addOption(configOption())
    .action(async (options: { domain: string; selector: string; algorithm: DkimAlgorithm; bits?: number; out?: string; force: boolean; config?: string }) => {
      const configDir = dirname(deps.configPath(options.config));
      const path = options.out !== undefined ? resolve(options.out) : join(configDir, 'certs', 'dkim', `${options.domain}.${options.selector}.key`);
      if (!options.force && existsSync(path)) {
        throw new PosternError('CONFIG_INVALID', `Refusing to overwrite ${path}: it already exists (pass --force to replace it)`);
      }
      const key = await generateDkimKey(options.algorithm, options.bits);
      try {
        await writeFileAtomic(path, key.pem, { mode: 0o600, exclusive: !options.force });
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
        throw new PosternError('CONFIG_INVALID', `Refusing to overwrite ${path}: it appeared meanwhile (pass --force to replace it)`);
      }
      // In the configuration a relative keyFile is read relative to the configuration file.
      const within = relative(configDir, path);
      const keyFile = within !== '' && !within.startsWith('..') && !isAbsolute(within) ? within : path;
      const size = key.algorithm === 'rsa' ? `${key.bits}-bit RSA` : 'Ed25519';
      say(`Wrote the ${size} private key to ${path} (mode 0600).`);
      say('');
      say('Publish this DNS record:');
      say(zoneFileLine(options.selector, options.domain, dkimRecordText(key.algorithm, key.publicKeyValue)));
      say('');
      say('Then add the key to the configuration, and run `postern dkim check` once the record is visible:');
      say('dkim:');
      say('  keys:');
      say(`    - { domain: ${options.domain}, selector: ${options.selector}, keyFile: ${JSON.stringify(keyFile)}, active: true }`);
    });

  dkim
    .command('check')
    .description("look up each configured key's DNS record and say whether it matches the key; fails when an active key's does not")
    .requiredOption('--domain <domain>', 'the signing domain', domainArgument)
    .addOption(configOption())
    .action(async (options: { domain: string; config?: string }) => {
      const config = deps.loadConfig(options.config);
      const keys = config.dkim.keys.filter((key) => key.domain === options.domain);
      if (keys.length === 0) {
        io.stderr.write(`postern: no DKIM key is configured for ${options.domain} (dkim.keys)\n`);
        process.exitCode = 1;
        return;
      }
      const resolver = deps.resolver?.(config.dns.servers) ?? createNodeResolver({ servers: config.dns.servers });
      const checks = await checkPublishedKeys(keys, resolver);
      say(formatPublicationChecks(checks));
      if (checks.some((check) => check.problem)) process.exitCode = 1;
    });
}

const STATUS_LABEL: Record<PublicationStatus, string> = {
  matches: 'OK',
  'different-key': 'DIFFERENT KEY',
  'not-published': 'NOT PUBLISHED',
  revoked: 'REVOKED',
  'several-records': 'AMBIGUOUS',
  'invalid-record': 'INVALID RECORD',
  'lookup-failed': 'LOOKUP FAILED',
  'key-unreadable': 'KEY UNREADABLE',
};

/** One line per selector: "s1._domainkey.example.com  rsa  active    OK: published and matches ...". */
export function formatPublicationChecks(checks: readonly PublicationCheck[]): string {
  const width = Math.max(...checks.map((check) => check.name.length));
  return checks
    .map((check) => {
      const state = check.active ? 'active' : 'inactive';
      return `${check.name.padEnd(width)}  ${(check.algorithm ?? '?').padEnd(7)}  ${state.padEnd(8)}  ${STATUS_LABEL[check.status]}: ${check.detail}`;
    })
    .join('\n');
}
