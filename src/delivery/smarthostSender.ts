import { isIP } from 'node:net';
import type { Readable } from 'node:stream';
import { domainToASCII } from 'node:url';
import type { NodemailerError } from 'nodemailer';
import MimeNode from 'nodemailer/lib/mime-node';
import type { SMTPConnectionSendInfo, SMTPEnvelope } from 'nodemailer/lib/smtp-connection';
import type { SmarthostConfig } from '../config/schema.js';
import { readCaFile } from '../tls/caFile.js';
import { errorMessage } from '../util/errors.js';
import type { Logger } from '../util/logger.js';
import { classifyReplyCode, classifySendError, describeSendError, type DeliveryOutcome } from './replyClassifier.js';
import { SmtpConnectionPool } from './smtpConnectionPool.js';
import type { TransferNeeds } from './smtpExtensions.js';

/** One message to hand to the next hop, for the recipients still pending. */
export interface OutgoingMessage {
  id: string;
  /** The reverse-path; '' sends MAIL FROM:<>. */
  sender: string;
  recipients: string[];
  /**
   * Opens the message as spooled; called once per attempt, or twice when the first try failed
   * on a reused connection before any of the message was read.
   */
  message: () => Readable;
  /** Bytes, announced with SIZE= when the server supports it (RFC 1870). */
  size?: number;
  /** Announce BODY=8BITMIME (RFC 6152): the client did, or the message holds 8-bit bytes. */
  eightBitMime?: boolean;
  /** What the next hop must offer for the message to go there at all. */
  needs?: TransferNeeds;
}

export interface RecipientResult {
  address: string;
  outcome: DeliveryOutcome;
  /** The remote server's reply for this recipient, or what kept us from getting one. */
  reply: string;
  /** The host that gave the reply, when a server did (named in bounces as Remote-MTA). */
  remoteMta?: string;
}

export interface DeliveryAttempt {
  recipients: RecipientResult[];
}

/** What the delivery queue needs from a next hop. */
export interface MessageSender {
  /** Never rejects: every failure becomes a per-recipient outcome. */
  send(message: OutgoingMessage): Promise<DeliveryAttempt>;
  close(): void;
}

/** A smarthost or relay as configured; the timeouts may be left to nodemailer's defaults. */
export type RelayTarget = Omit<SmarthostConfig, 'connectTimeout' | 'greetingTimeout'> & Partial<Pick<SmarthostConfig, 'connectTimeout' | 'greetingTimeout'>>;

export interface SmarthostSenderOptions {
  /** The name to announce in EHLO; this gateway's configured hostname. */
  clientHostname?: string;
  /** Connections kept open to the smarthost; match the delivery concurrency. */
  maxConnections?: number;
  /** An idle connection says QUIT after this long (default 30 s). */
  idleTimeoutMs?: number;
}

/**
 * Relays spooled messages to one smarthost over a pool of SMTP connections (nodemailer's
 * SMTPConnection, see SmtpConnectionPool).
 *
 * The message goes out byte for byte as spooled: the stream is handed to the connection as
 * is, so nothing is parsed, re-encoded or added, and the SMTP envelope is given explicitly,
 * so the header fields (To, Cc, Bcc) play no part in where it goes.
 */
export class SmarthostSender implements MessageSender {
  private readonly pool: SmtpConnectionPool;
  private readonly target: string;
  private readonly host: string;
  /**
   * Normalises envelope addresses exactly as nodemailer's sendMail() did before handing them
   * to the connection (IDN domains to A-labels, odd local parts quoted, duplicates dropped);
   * setEnvelope() keeps no state between calls, so one instance serves every message.
   */
  private readonly addresses = new MimeNode();

  constructor(
    config: RelayTarget,
    private readonly logger: Logger,
    options: SmarthostSenderOptions = {},
  ) {
    this.target = `${config.host}:${config.port}`;
    this.host = config.host;
    const ca = config.ca === undefined ? undefined : readCaFile(config.ca, 'smarthost');
    this.pool = new SmtpConnectionPool({
      connection: {
        host: config.host,
        port: config.port,
        // implicit: TLS from the first byte (RFC 8314). starttls: the upgrade is required, a
        // server that does not offer it fails the attempt instead of getting plaintext.
        // opportunistic: upgrade when offered, go on in plaintext when the server says no.
        secure: config.tls === 'implicit',
        requireTLS: config.tls === 'starttls',
        opportunisticTLS: config.tls === 'opportunistic',
        ignoreTLS: config.tls === 'none',
        tls: {
          rejectUnauthorized: config.verifyCertificate,
          // SNI carries host names only (RFC 6066 §3); an IP address smarthost gets none.
          ...(isIP(config.host) === 0 && { servername: config.host }),
          ...(ca !== undefined && { ca }),
        },
        ...(options.clientHostname !== undefined && { name: options.clientHostname }),
        // Absent only in a configuration built by hand; nodemailer's defaults then apply.
        ...(config.connectTimeout !== undefined && { connectionTimeout: config.connectTimeout }),
        ...(config.greetingTimeout !== undefined && { greetingTimeout: config.greetingTimeout }),
        logger: false,
      },
      // With credentials configured, every connection logs in, offered AUTH or not: a server
      // that does not offer it is refused rather than silently used without logging in.
      ...(config.auth && { auth: { user: config.auth.user, pass: config.auth.pass } }),
      maxConnections: options.maxConnections ?? 5,
      ...(options.idleTimeoutMs !== undefined && { idleTimeoutMs: options.idleTimeoutMs }),
      logger,
    });
  }

  async send(message: OutgoingMessage): Promise<DeliveryAttempt> {
    if (message.recipients.length === 0) return { recipients: [] };
    try {
      const info = await this.pool.send(this.envelopeFor(message), message.message, message.needs);
      return { recipients: resultsFromInfo(message.recipients, info, this.host) };
    } catch (err) {
      this.logger.debug({ queueId: message.id, smarthost: this.target, err: errorMessage(err) }, 'smarthost send failed');
      const nodemailerError = err as NodemailerError;
      // Only a reply comes from the host; a refused connection or a timeout does not.
      return { recipients: resultsFromError(message.recipients, nodemailerError, nodemailerError.response ? this.host : undefined) };
    }
  }

  /** Close idle connections now and busy ones once their message is done. */
  close(): void {
    this.pool.close();
  }

  private envelopeFor(message: OutgoingMessage): SMTPEnvelope {
    return smtpEnvelope(this.addresses, message);
  }
}

/** The SMTP envelope of a message as nodemailer's connection takes it. */
export function smtpEnvelope(normaliser: MimeNode, message: OutgoingMessage): SMTPEnvelope {
  const { from, to } = normaliseEnvelope(normaliser, message.sender, message.recipients);
  return {
    from,
    to,
    ...(message.size !== undefined && { size: message.size }),
    ...(message.eightBitMime && { use8BitMime: true }),
  };
}

/**
 * Addresses nodemailer's normalisation leaves exactly as they are: a dot-atom local part of
 * common characters at a lower-case ASCII host name. Nearly every envelope is made of these.
 */
const PLAIN_ADDRESS = /^[A-Za-z0-9_+-]+(?:\.[A-Za-z0-9_+-]+)*@[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)*$/;

/**
 * The envelope as nodemailer's sendMail() would have sent it: parsed and normalised by
 * MimeNode.setEnvelope() (IDN domains to A-labels, odd local parts quoted, duplicates
 * dropped). Plain addresses, which that leaves untouched, skip the parse.
 */
export function normaliseEnvelope(normaliser: MimeNode, sender: string, recipients: string[]): { from: string | false; to: string[] } {
  const from = sender === '' ? false : sender;
  if ((from === false || PLAIN_ADDRESS.test(from)) && recipients.every((r) => PLAIN_ADDRESS.test(r)) && new Set(recipients).size === recipients.length) {
    return { from, to: recipients };
  }
  const normalised = normaliser.setEnvelope({ from, to: recipients }).getEnvelope();
  return { from: normalised.from, to: normalised.to };
}

/**
 * The transaction went through (the server said 2xx after DATA): every recipient it accepted
 * is delivered; those refused at RCPT TO carry their own reply in info.rejectedErrors.
 */
export function resultsFromInfo(recipients: string[], info: SMTPConnectionSendInfo, remoteMta?: string): RecipientResult[] {
  const rejected = byAddress(info.rejectedErrors ?? [], (e) => e.recipient);
  const accepted = new Set(info.accepted.map(addressKey));
  const from = remoteMta === undefined ? {} : { remoteMta };
  return recipients.map((address) => {
    const refusal = rejected.get(addressKey(address));
    if (refusal) return { ...refusalResult(address, refusal), ...from };
    if (accepted.has(addressKey(address)) || recipients.length === 1) {
      return { address, outcome: 'delivered', reply: info.response, ...from };
    }
    // nodemailer rewrote the address beyond what addressKey() undoes; not knowing its fate,
    // the safe course is another attempt (a possible duplicate over a possible loss).
    return { address, outcome: 'deferred', reply: `recipient not found in the server's replies; last reply: ${info.response}`, ...from };
  });
}

/**
 * The transaction failed. When every recipient was refused at RCPT TO, nodemailer raises
 * EENVELOPE carrying each refusal in err.rejectedErrors; otherwise (MAIL FROM or DATA
 * refused, connection lost, TLS or login failed) one error speaks for every recipient.
 */
export function resultsFromError(recipients: string[], err: NodemailerError, remoteMta?: string): RecipientResult[] {
  const wholeOutcome = classifySendError(err);
  const wholeReply = describeSendError(err);
  const rejected = byAddress(err.rejectedErrors ?? [], (e) => e.recipient);
  const from = remoteMta === undefined ? {} : { remoteMta };
  return recipients.map((address) => {
    const refusal = rejected.get(addressKey(address));
    if (refusal) return { ...refusalResult(address, refusal), ...from };
    return { address, outcome: wholeOutcome, reply: wholeReply, ...from };
  });
}

function refusalResult(address: string, refusal: NodemailerError): RecipientResult {
  const outcome = typeof refusal.responseCode === 'number' ? classifyReplyCode(refusal.responseCode) : classifySendError(refusal);
  // A refusal is never "delivered", whatever odd code came with it.
  return { address, outcome: outcome === 'delivered' ? 'deferred' : outcome, reply: describeSendError(refusal) };
}

function byAddress<T>(items: T[], addressOf: (item: T) => string | undefined): Map<string, T> {
  const map = new Map<string, T>();
  for (const item of items) {
    const address = addressOf(item);
    if (address !== undefined) map.set(addressKey(address), item);
  }
  return map;
}

/**
 * A comparison key for an address as we spooled it and as nodemailer reports it back: it
 * turns domains into A-labels (or U-labels with a UTF-8 local part) and may quote a local
 * part, so compare with the domain in A-label form, case-folded (domains are
 * case-insensitive, RFC 5321 section 2.4), and the local part without its quoting.
 */
export function addressKey(address: string): string {
  const at = address.lastIndexOf('@');
  if (at < 0) return unquote(address);
  const local = unquote(address.slice(0, at));
  const domain = address.slice(at + 1);
  const ascii = domainToASCII(domain);
  return `${local}@${(ascii || domain).toLowerCase()}`;
}

function unquote(local: string): string {
  if (local.length >= 2 && local.startsWith('"') && local.endsWith('"')) {
    return local.slice(1, -1).replace(/\\(.)/g, '$1');
  }
  return local;
}
