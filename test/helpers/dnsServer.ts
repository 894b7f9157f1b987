import { spawn, type ChildProcess } from 'node:child_process';
import { promises as dns } from 'node:dns';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './ports.js';

/**
 * A real DNS server on loopback for tests: dnsmasq (CI installs dnsmasq-base) serving a small
 * test zone given on its command line. It binds 127.0.0.1 only, on a free high port (never 53),
 * reads no configuration file, /etc/hosts or upstream resolvers, and writes no pid file.
 * Names under `zone` that the test does not define answer NXDOMAIN (or NODATA for a name
 * with records of another type); names outside it answer REFUSED.
 */

export interface TestZone {
  /** The domain dnsmasq is authoritative-like for, e.g. "spf.test". */
  zone: string;
  /** name -> TXT records; each record is one or more character strings. */
  txt?: Record<string, Array<string | string[]>>;
  /** name -> IPv4 and IPv6 addresses (A and AAAA records). */
  hosts?: Record<string, string[]>;
  /** name -> MX records. */
  mx?: Record<string, Array<{ preference: number; exchange: string }>>;
  /**
   * Names that publish the null MX "0 ." (RFC 7505): they accept no mail. dnsmasq answers other
   * types for a name that only has this record with NXDOMAIN, not NODATA.
   */
  nullMx?: string[];
  /** name -> the name it is an alias of (CNAME); the target should be defined in the zone too. */
  cname?: Record<string, string>;
  /** TTL in seconds of every answer (dnsmasq's `local-ttl`); dnsmasq's default is 0. */
  ttl?: number;
  /**
   * Serve the zone authoritatively (dnsmasq's `auth-zone`), so that NXDOMAIN and NODATA answers
   * carry the zone's SOA for negative caching (RFC 2308). Every TTL in the zone, the SOA's own
   * and its MINIMUM field included, is then this many seconds (`auth-ttl`; `ttl` no longer applies).
   */
  authoritativeTtl?: number;
}

export interface DnsServer {
  port: number;
  /** For setServers / createNodeResolver: "127.0.0.1:port". */
  server: string;
  stop(): Promise<void>;
}

const PROBE_NAME = 'postern-dns-probe';
const START_ATTEMPTS = 3;
const READY_POLLS = 100;

/**
 * The records go into a configuration file rather than on the command line: only there does
 * dnsmasq read quoted strings, so a TXT string may hold spaces and commas.
 */
function zoneConfig(zone: TestZone): string {
  const lines = [`local=/${zone.zone}/`, `txt-record=${PROBE_NAME}.${zone.zone},"ready"`];
  if (zone.ttl !== undefined) lines.push(`local-ttl=${seconds('ttl', zone.ttl)}`);
  if (zone.authoritativeTtl !== undefined) {
    // Queries arriving on 127.0.0.1 are answered from the zone, with its SOA on negative answers.
    lines.push(`auth-zone=${zone.zone}`, `auth-server=ns.${zone.zone},127.0.0.1`, `auth-ttl=${seconds('authoritativeTtl', zone.authoritativeTtl)}`);
  }
  for (const [name, target] of Object.entries(zone.cname ?? {})) {
    lines.push(`cname=${name},${target}`);
  }
  for (const [name, records] of Object.entries(zone.txt ?? {})) {
    for (const record of records) {
      const strings = typeof record === 'string' ? [record] : record;
      if (strings.some((text) => /["\\\r\n]/.test(text))) throw new Error(`TXT record of ${name} may not contain quotes, backslashes or line breaks`);
      lines.push(`txt-record=${name},${strings.map((text) => `"${text}"`).join(',')}`);
    }
  }
  for (const [name, addresses] of Object.entries(zone.hosts ?? {})) {
    // host-record takes one IPv4 and one IPv6 address; a line per address gives the name them all.
    for (const address of addresses) lines.push(`host-record=${name},${address}`);
  }
  for (const [name, records] of Object.entries(zone.mx ?? {})) {
    for (const { preference, exchange } of records) {
      if (!Number.isInteger(preference) || preference < 0 || preference > 0xffff) throw new Error(`MX preference of ${name} must be 0-65535, got ${preference}`);
      if (!/^[A-Za-z0-9.-]+$/.test(exchange)) throw new Error(`MX exchange of ${name} must be a host name, got "${exchange}"`);
      lines.push(`mx-host=${name},${exchange},${preference}`);
    }
  }
  for (const name of zone.nullMx ?? []) {
    // mx-host cannot name the root as exchange, so the record is written raw (type 15, MX):
    // RDATA is the preference 0 as two octets, then the root name, a single zero octet.
    lines.push(`dns-rr=${name},15,0000 00`);
  }
  return `${lines.join('\n')}\n`;
}

function seconds(option: string, value: number): number {
  if (!Number.isInteger(value) || value < 0) throw new Error(`${option} must be a whole number of seconds, got ${value}`);
  return value;
}

/** Everything that keeps it off port 53, off other addresses and away from the system's files. */
function dnsmasqArgs(configFile: string, port: number): string[] {
  return [
    '--keep-in-foreground',
    '--log-facility=-',
    // Replaces /etc/dnsmasq.conf (and with it any conf-dir): only the test zone is read.
    `--conf-file=${configFile}`,
    // No pid file (an empty value turns it off).
    '--pid-file',
    `--port=${port}`,
    '--listen-address=127.0.0.1',
    '--bind-interfaces',
    '--no-resolv',
    '--no-hosts',
    '--no-poll',
    '--cache-size=0',
  ];
}

function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once('exit', () => resolve()));
}

async function stopChild(child: ChildProcess): Promise<void> {
  // A child that never started (no binary) has nothing to stop and may never emit 'exit'.
  if (child.pid === undefined) return;
  const gone = exited(child);
  if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
  await gone;
}

/** Resolves once the server answers the probe record; rejects if dnsmasq exits first. */
async function waitUntilAnswering(child: ChildProcess, server: string, zone: string, output: () => string): Promise<void> {
  const resolver = new dns.Resolver({ timeout: 200, tries: 1 });
  resolver.setServers([server]);
  const probe = `${PROBE_NAME}.${zone}`;
  for (let poll = 0; poll < READY_POLLS; poll++) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`dnsmasq exited: ${output().trim()}`);
    try {
      await resolver.resolveTxt(probe);
      return;
    } catch {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
  throw new Error(`dnsmasq did not answer on ${server}: ${output().trim()}`);
}

/** Starts dnsmasq serving `zone` on 127.0.0.1; stop() kills it and waits for it to exit. */
export async function startDnsServer(zone: TestZone): Promise<DnsServer> {
  const dir = mkdtempSync(join(tmpdir(), 'postern-dns-'));
  const configFile = join(dir, 'zone.conf');
  writeFileSync(configFile, zoneConfig(zone));
  const removeConfig = () => rmSync(dir, { recursive: true, force: true });
  let lastError: unknown;
  for (let attempt = 0; attempt < START_ATTEMPTS; attempt++) {
    const port = await freePort();
    // freePort gives an ephemeral port; the check only guards the promise made above.
    if (port < 1024) throw new Error(`refusing to run dnsmasq on privileged port ${port}`);
    const server = `127.0.0.1:${port}`;
    let child: ChildProcess;
    try {
      child = spawn('dnsmasq', dnsmasqArgs(configFile, port), { stdio: ['ignore', 'ignore', 'pipe'] });
    } catch (error) {
      removeConfig();
      throw new Error(`dnsmasq could not be started (apt-get install dnsmasq-base): ${(error as Error).message}`);
    }
    let output = '';
    child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const spawnFailure = new Promise<never>((_, reject) =>
      child.once('error', (error) => reject(new Error(`dnsmasq could not be started (apt-get install dnsmasq-base): ${error.message}`))),
    );
    spawnFailure.catch(() => undefined);
    try {
      await Promise.race([waitUntilAnswering(child, server, zone.zone, () => output), spawnFailure]);
      return {
        port,
        server,
        stop: async () => {
          await stopChild(child);
          removeConfig();
        },
      };
    } catch (error) {
      lastError = error;
      await stopChild(child);
      // A missing binary will not appear on the next attempt; a port taken meanwhile might.
      if ((error as Error).message.includes('could not be started')) break;
    }
  }
  removeConfig();
  throw lastError;
}
