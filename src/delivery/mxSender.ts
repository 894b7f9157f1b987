import { isIP } from 'node:net';
import type { Readable } from 'node:stream';
import { rootCertificates } from 'node:tls';
import type { NodemailerError } from 'nodemailer';
import MimeNode from 'nodemailer/lib/mime-node';
import type { SMTPConnectionOptions } from 'nodemailer/lib/smtp-connection';
import type { DnsResolver } from '../policy/types.js';
import { errorMessage } from '../util/errors.js';
import type { Logger } from '../util/logger.js';
import { DEFAULT_MAX_ADDRESSES, limitAddresses, lookupMx, type MxHost } from './mxLookup.js';
import { mxMatchesPolicy, type MtaStsPolicy } from './mtaSts.js';
import { resultsFromError, resultsFromInfo, smtpEnvelope, type DeliveryAttempt, type OutgoingMessage } from './smarthostSender.js';
import { Semaphore } from './semaphore.js';
import { SmtpConnectionPool } from './smtpConnectionPool.js';

export interface MxSenderOptions {
  resolver: DnsResolver;
  logger: Logger;
  /** The name announced in EHLO: this gateway's hostname. */
  clientHostname: string;
  /** Port of MX hosts; 25 except in tests. */
  port: number;
  /** Extra trusted CA certificates (PEM), added to the system's. */
  ca?: string | Buffer;
  maxConnectionsPerDomain: number;
  connectTimeoutMs: number;
  /** Waiting for the greeting, and for a STARTTLS handshake. */
  greetingTimeoutMs?: number;
  /** The MTA-STS policy of a domain, or undefined; absent: MTA-STS is off. */
  mtaSts?: (domain: string) => Promise<MtaStsPolicy | undefined>;
  /** [0,1) randomness for ordering MX hosts of equal preference. */
  random?: () => number;
  /** An idle connection says QUIT after this long. */
  idleTimeoutMs?: number;
}

/** What one transaction with one domain's MX hosts asks for. */
export interface MxTlsPolicy {
  tls: 'opportunistic' | 'require';
  verifyCertificate: boolean;
}

/** Past this many pools, those without connections are dropped. */
const POOL_SWEEP_THRESHOLD = 1000;

/** How one connection to one address speaks TLS. */
interface ConnectionTls {
  /** require: STARTTLS or fail; opportunistic: STARTTLS when offered; none: plaintext (after a failed opportunistic handshake). */
  mode: 'require' | 'opportunistic' | 'none';
  verify: boolean;
  /** The name the certificate must carry (the MX host name), when verifying. */
  servername?: string;
}

/**
 * Delivers one domain's recipients directly to its MX hosts (RFC 5321 section 5.1): look up
 * the hosts, apply the domain's MTA-STS policy (RFC 8461), then try each address in order
 * until one takes the transaction.
 *
 * A failure to reach or set up a session with a host (no connection, a 421, a refused
 * greeting or EHLO, a TLS failure) moves on to the next address; a reply to the envelope or
 * the message from a host that took the session is that host's verdict and ends the attempt,
 * as in Postfix. Connections are pooled per address and reused across messages; at most
 * `maxConnectionsPerDomain` transactions to one domain run at once.
 */
export class MxSender {
  private readonly pools = new Map<string, SmtpConnectionPool>();
  private readonly domainSlots = new Map<string, Semaphore>();
  private readonly addresses = new MimeNode();
  private readonly ca: Array<string | Buffer> | undefined;
  private closed = false;

  constructor(private readonly options: MxSenderOptions) {
    // A ca option replaces Node's trusted roots; the extra CA is added to them instead.
    this.ca = options.ca === undefined ? undefined : [...rootCertificates, options.ca];
  }

  /** Send `message` to its recipients, who all share `domain` (an A-label, lower case). */
  async send(domain: string, message: OutgoingMessage, policy: MxTlsPolicy): Promise<DeliveryAttempt> {
    const { recipients } = message;
    if (recipients.length === 0) return { recipients: [] };
    const everyone = (outcome: 'deferred' | 'failed', reply: string): DeliveryAttempt => ({
      recipients: recipients.map((address) => ({ address, outcome, reply })),
    });

    // Every host first: MTA-STS may rule some out, and the address limit applies to those left
    // (a policy naming only the backup MX must not find it cut off behind the primary's addresses).
    const lookup = await lookupMx(domain, {
      resolver: this.options.resolver,
      maxAddresses: Number.MAX_SAFE_INTEGER,
      ...(this.options.random && { random: this.options.random }),
    });
    if (!lookup.ok) return everyone(lookup.permanent ? 'failed' : 'deferred', `${lookup.enhancedCode} ${lookup.reply}`);

    let hosts = lookup.hosts;
    let sts: MtaStsPolicy | undefined;
    if (this.options.mtaSts && !domain.startsWith('[')) {
      sts = await this.options.mtaSts(domain);
      if (sts && sts.mode !== 'none') {
        const allowed = hosts.filter((host) => mxMatchesPolicy(host.name, sts!.mx));
        if (sts.mode === 'enforce') {
          if (allowed.length === 0) {
            this.options.logger.warn({ queueId: message.id, domain, mx: hosts.map((h) => h.name), policy: sts.mx }, 'MTA-STS: no MX host matches the enforced policy; deferred');
            return everyone('deferred', `4.7.5 MTA-STS policy of ${domain} allows none of its MX hosts (${hosts.map((h) => h.name).join(', ')})`);
          }
          hosts = allowed;
        } else if (allowed.length < hosts.length) {
          // testing: report what enforce would have refused, deliver as usual (RFC 8461 section 5).
          this.options.logger.warn({ queueId: message.id, domain, mx: hosts.map((h) => h.name), policy: sts.mx }, 'MTA-STS (testing): MX hosts outside the policy');
        }
      }
    }
    const enforced = sts?.mode === 'enforce';
    hosts = limitAddresses(hosts, DEFAULT_MAX_ADDRESSES);

    const slots = this.slotsFor(domain);
    const release = await slots.acquire();
    try {
      let lastFailure = 'no address was tried';
      for (const host of hosts) {
        for (const address of host.addresses) {
          const tls = connectionTls(host, address, policy, enforced);
          const result = await this.tryAddress(host, address, tls, message);
          if ('attempt' in result) return result.attempt;
          lastFailure = `${host.name}[${address}]: ${result.failure}`;
          if (tls.mode === 'opportunistic' && !tls.verify && result.tlsFailed) {
            // Opportunistic TLS that cannot even complete a handshake falls back to plaintext,
            // as Postfix does at security level "may": unencrypted beats undelivered here.
            const plain = await this.tryAddress(host, address, { mode: 'none', verify: false }, message);
            if ('attempt' in plain) return plain.attempt;
            lastFailure = `${host.name}[${address}]: ${plain.failure}`;
          }
        }
      }
      const why = enforced ? ` (MTA-STS enforced: TLS with a certificate valid for the MX name required)` : '';
      this.options.logger.warn({ queueId: message.id, domain, reply: lastFailure, mtaSts: enforced || undefined }, 'no MX host of the domain took the message');
      return everyone('deferred', `4.4.1 no MX host of ${domain} took the message${why}; last: ${lastFailure}`);
    } finally {
      release();
      // Domains come and go; only those with deliveries in progress keep a counter.
      if (slots.idle) this.domainSlots.delete(domain);
    }
  }

  close(): void {
    this.closed = true;
    for (const pool of this.pools.values()) pool.close();
    this.pools.clear();
  }

  private async tryAddress(
    host: MxHost,
    address: string,
    tls: ConnectionTls,
    message: OutgoingMessage,
  ): Promise<{ attempt: DeliveryAttempt } | { failure: string; tlsFailed: boolean }> {
    const pool = this.poolFor(address, tls);
    // Whether any of the message went out: after that, a lost connection may still have
    // delivered it, and trying another host (or plaintext) could deliver it twice.
    const opened: Readable[] = [];
    const open = () => {
      const stream = message.message();
      opened.push(stream);
      return stream;
    };
    try {
      const info = await pool.send(smtpEnvelope(this.addresses, message), open, message.needs);
      return { attempt: { recipients: resultsFromInfo(message.recipients, info, host.name) } };
    } catch (err) {
      const error = err as NodemailerError;
      if (isSessionFailure(error) && !opened.some((stream) => stream.readableDidRead)) {
        this.options.logger.debug({ queueId: message.id, mx: host.name, address, err: errorMessage(err) }, 'MX host failed; trying the next');
        return { failure: describe(error), tlsFailed: error.code === 'ETLS' || /certificate|handshake|SSL|TLS/i.test(error.message ?? '') };
      }
      return { attempt: { recipients: resultsFromError(message.recipients, error, host.name) } };
    }
  }

  private poolFor(address: string, tls: ConnectionTls): SmtpConnectionPool {
    const key = `${address}\0${tls.mode}\0${tls.verify}\0${tls.servername ?? ''}`;
    let pool = this.pools.get(key);
    if (!pool) {
      // A send that outlived stop() must not open new connections after shutdown.
      if (this.closed) throw new Error('delivery is stopping');
      if (this.pools.size >= POOL_SWEEP_THRESHOLD) this.sweepPools();
      const connection: SMTPConnectionOptions = {
        host: address,
        port: this.options.port,
        name: this.options.clientHostname,
        secure: false,
        requireTLS: tls.mode === 'require',
        opportunisticTLS: tls.mode === 'opportunistic',
        ignoreTLS: tls.mode === 'none',
        connectionTimeout: this.options.connectTimeoutMs,
        ...(this.options.greetingTimeoutMs !== undefined && { greetingTimeout: this.options.greetingTimeoutMs }),
        tls: {
          rejectUnauthorized: tls.verify,
          ...(tls.servername !== undefined && { servername: tls.servername }),
          ...(this.ca !== undefined && { ca: this.ca }),
        },
        logger: false,
      };
      pool = new SmtpConnectionPool({
        connection,
        maxConnections: this.options.maxConnectionsPerDomain,
        ...(this.options.idleTimeoutMs !== undefined && { idleTimeoutMs: this.options.idleTimeoutMs }),
        logger: this.options.logger,
      });
      this.pools.set(key, pool);
    }
    return pool;
  }

  /** Forget pools without a connection: a gateway sending to many destinations must not keep one per address forever. */
  private sweepPools(): void {
    for (const [key, pool] of this.pools) {
      if (pool.unused) {
        pool.close();
        this.pools.delete(key);
      }
    }
  }

  private slotsFor(domain: string): Semaphore {
    let slots = this.domainSlots.get(domain);
    if (!slots) {
      slots = new Semaphore(this.options.maxConnectionsPerDomain);
      this.domainSlots.set(domain, slots);
    }
    return slots;
  }
}

function connectionTls(host: MxHost, address: string, policy: MxTlsPolicy, enforced: boolean): ConnectionTls {
  const verify = enforced || policy.verifyCertificate;
  const named = isIP(host.name) === 0 ? host.name : undefined;
  return {
    mode: enforced || policy.tls === 'require' ? 'require' : 'opportunistic',
    verify,
    // The certificate is checked against the MX name (RFC 8461 section 4.2), never the address.
    ...(named !== undefined ? { servername: named } : isIP(address) === 0 ? { servername: address } : {}),
  };
}

/** Commands whose replies speak about the message; anything before them is about the session. */
const MESSAGE_COMMANDS = new Set(['MAIL FROM', 'RCPT TO', 'DATA']);

/**
 * The error means this host never took the transaction, so the next host may: no connection,
 * a timeout, TLS, a reply to the greeting or EHLO, or 421 (service closing, RFC 5321 section
 * 3.8) at any point.
 */
function isSessionFailure(err: NodemailerError): boolean {
  if (err.responseCode === 421) return true;
  if (err.code === 'EENVELOPE' && err.rejectedErrors && err.rejectedErrors.length > 0) return false;
  if (typeof err.responseCode === 'number' && MESSAGE_COMMANDS.has(err.command ?? '')) return false;
  if (err.code === 'EMESSAGE' || (err.code === 'EENVELOPE' && err.command === 'API')) return false;
  return true;
}

function describe(err: NodemailerError): string {
  if (err.response) return err.response;
  return `${err.code ? `${err.code}: ` : ''}${err.message}`;
}
