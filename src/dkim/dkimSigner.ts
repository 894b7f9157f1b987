import { createHash, sign as cryptoSign } from 'node:crypto';
import type { Readable } from 'node:stream';
import addressparser from 'nodemailer/lib/addressparser';
import { domainOfAddress } from '../policy/match/addresses.js';
import type { Clock } from '../util/clock.js';
import { errorMessage } from '../util/errors.js';
import type { Logger } from '../util/logger.js';
import { signingDomainFor } from './alignment.js';
import type { DkimKey, DkimKeyring } from './dkimKeys.js';
import { formatSignatureField, relaxedHeaders, type MailauthSigningHeaderLines } from './mailauthDkim.js';
import { digestMessage } from './messageDigest.js';
import { selectSignedHeaders } from './signedHeaders.js';

export interface SignInput {
  /** The From: header field value(s) of the message (raw, unfolded); the signing domain follows the From domain. */
  from: readonly string[];
  /** Postern's own header lines, CRLF-terminated, sent in front of the message. */
  prepended: string;
  /** Opens the message file from its first byte (each call a new stream). */
  open(): Readable;
}

/** relaxed/relaxed survives the re-folding and white-space changes of relaying hops (RFC 6376 section 3.4). */
const CANONICALIZATION = 'relaxed/relaxed';

/**
 * DKIM signing (RFC 6376; Ed25519 per RFC 8463) of every message whose From domain has a key.
 * The signature covers exactly what delivery sends, Postern's header lines then the message
 * file, and the DKIM-Signature lines go on top of both.
 */
export class DkimSigner {
  private readonly keyring: DkimKeyring;
  private readonly clock: Clock;
  private readonly logger: Logger;

  constructor(options: { keyring: DkimKeyring; clock: Clock; logger: Logger }) {
    this.keyring = options.keyring;
    this.clock = options.clock;
    this.logger = options.logger;
  }

  /**
   * DKIM-Signature header lines (CRLF-terminated, folded) to put on top, '' when no key
   * applies. Dual signing: one line per active algorithm. Throws only on I/O failure of open().
   */
  async sign(input: SignInput): Promise<string> {
    const fromDomain = authorDomain(input.from);
    if (fromDomain === undefined) return '';
    const domain = this.signingDomainFor(fromDomain);
    if (domain === undefined) return '';
    // Read the keys once: a reload while the message streams applies to the next message.
    const keys = this.keyring.activeKeys(domain);
    if (keys.length === 0) return '';

    const digest = await digestMessage(
      (async function* () {
        yield Buffer.from(input.prepended);
        yield* input.open() as AsyncIterable<Buffer>;
      })(),
    );
    const signed = selectSignedHeaders(digest.headers);
    const signTime = new Date(this.clock.now());
    let lines = '';
    for (const key of keys) {
      try {
        lines += `${signatureField(key, signed, digest.bodyHash, signTime)}\r\n`;
      } catch (err) {
        // A key that cannot sign (it passed the checks at load, so this is unexpected) leaves
        // the message unsigned by it rather than refusing the message.
        this.logger.error({ domain: key.domain, selector: key.selector, algorithm: key.algorithm, err: errorMessage(err) }, 'DKIM signing failed');
      }
    }
    return lines;
  }

  /** The d= domain that would sign mail From this domain, or undefined (rules use it to judge DMARC alignment). */
  signingDomainFor(fromDomain: string): string | undefined {
    return signingDomainFor(fromDomain, (domain) => this.keyring.hasActiveKey(domain));
  }
}

/** One DKIM-Signature field, folded, without its final CRLF. */
function signatureField(key: DkimKey, signed: MailauthSigningHeaderLines, bodyHash: string, signTime: Date): string {
  const algorithm = `${key.algorithm}-sha256`;
  const { canonicalizedHeader, dkimHeaderOpts } = relaxedHeaders('DKIM', signed, {
    signingDomain: key.domain,
    selector: key.selector,
    algorithm,
    canonicalization: CANONICALIZATION,
    bodyHash,
    signTime,
  });
  // RSA: RSASSA-PKCS1-v1_5 over SHA-256 of the header data (RFC 6376 section 3.3.1).
  // Ed25519: PureEdDSA over the SHA-256 of the header data (RFC 8463 section 3), as mailauth does.
  const signature =
    key.algorithm === 'rsa'
      ? cryptoSign('sha256', canonicalizedHeader, key.privateKey)
      : cryptoSign(null, createHash('sha256').update(canonicalizedHeader).digest(), key.privateKey);
  return formatSignatureField({ ...dkimHeaderOpts, b: signature.toString('base64') });
}

/**
 * The one domain the message's author addresses share, or undefined when there is none: no
 * From address, or addresses in several domains (RFC 7489 section 6.6.1: such a message has no
 * single author domain to align with, so no signature could make it pass DMARC).
 */
function authorDomain(fromValues: readonly string[]): string | undefined {
  const domains = new Set<string>();
  for (const value of fromValues) {
    for (const mailbox of addressparser(value, { flatten: true })) {
      const domain = mailbox.address ? domainOfAddress(mailbox.address) : undefined;
      if (domain !== undefined) domains.add(domain);
    }
  }
  return domains.size === 1 ? [...domains][0] : undefined;
}
