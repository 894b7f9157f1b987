import { createRequire } from 'node:module';
import type { Writable } from 'node:stream';

/**
 * The pieces of mailauth's DKIM signer Postern builds on, typed. mailauth's own dkimSign()
 * signs only the header fields a message has; over-signing (RFC 6376 section 8.15) needs names
 * in h= that have no instance left, so the signer assembles mailauth's lower-level parts
 * itself: the message parser, the relaxed body hasher, header selection, relaxed header
 * canonicalization and the signature field formatter. No canonicalization is written here.
 *
 * These modules ship without declarations, and other parts of the tree declare some of
 * mailauth's modules ambiently; loading them through createRequire keeps these types local.
 */
const require = createRequire(import.meta.url);

/** One header field as mailauth's parser keeps it: the raw (folded) line, binary-safe. */
export interface MailauthHeaderLine {
  /** Lower-case field name. */
  key: string | null;
  /** The name as written. */
  casedKey: string | undefined;
  line: Buffer;
}

export interface MailauthParsedHeaders {
  parsed: MailauthHeaderLine[];
  original: Buffer;
}

/** The header fields chosen for h=, bottom-up, and h= itself ("From: To: ..."). */
export interface MailauthSigningHeaderLines {
  keys: string;
  headers: MailauthHeaderLine[];
}

/** Separates the header block from the body as a stream passes (RFC 5322 section 2.1). */
export interface MailauthMessageParser extends Writable {
  messageHeaders(headers: MailauthParsedHeaders): Promise<void>;
  nextChunk(chunk: Buffer): Promise<void>;
  finalChunk(): Promise<void>;
}

type MessageParserConstructor = new () => MailauthMessageParser;

/** Body hash with relaxed body canonicalization (RFC 6376 section 3.4.4). */
export interface MailauthBodyHash {
  update(chunk: Buffer): void;
  digest(encoding: 'base64'): string;
}

/** Tag values of a signature header field; b is added once the signature is known. */
export interface SignatureTags {
  a: string;
  c: string;
  s: string;
  d: string;
  h: string;
  bh: string;
  t?: number;
  b?: string;
}

const messageParserModule = require('mailauth/lib/dkim/message-parser.js') as { MessageParser: MessageParserConstructor };
const relaxedBodyModule = require('mailauth/lib/dkim/body/relaxed.js') as {
  RelaxedHash: new (algorithm: string, maxBodyLength?: number) => MailauthBodyHash;
};
const relaxedHeaderModule = require('mailauth/lib/dkim/header/relaxed.js') as {
  relaxedHeaders(
    type: 'DKIM',
    signingHeaderLines: MailauthSigningHeaderLines,
    options: { signingDomain: string; selector: string; algorithm: string; canonicalization: string; bodyHash: string; signTime: Date },
  ): { canonicalizedHeader: Buffer; dkimHeaderOpts: SignatureTags };
};
const tools = require('mailauth/lib/tools.js') as {
  getSigningHeaderLines(parsed: MailauthHeaderLine[], fieldNames: string): MailauthSigningHeaderLines;
  formatSignatureHeaderLine(type: 'DKIM', values: SignatureTags, folded: boolean): string;
  getAlignment(fromDomain: string, domainList: string[]): { domain: string } | false;
};

export const MessageParser: MessageParserConstructor = messageParserModule.MessageParser;

export function relaxedBodyHash(): MailauthBodyHash {
  return new relaxedBodyModule.RelaxedHash('sha256');
}

/** Every instance of the named fields, bottom-up, as RFC 6376 section 5.4.2 pairs them with h=. */
export function signingHeaderLines(parsed: MailauthHeaderLine[], fieldNames: readonly string[]): MailauthSigningHeaderLines {
  return tools.getSigningHeaderLines(parsed, fieldNames.join(':'));
}

/**
 * The relaxed-canonicalized header data to sign (RFC 6376 section 3.7): the selected fields,
 * then the DKIM-Signature field itself with an empty b=, and the tags that field carries.
 */
export const relaxedHeaders = relaxedHeaderModule.relaxedHeaders;

/** "DKIM-Signature: v=1; a=...; b=..." folded for the wire, without the final CRLF. */
export function formatSignatureField(tags: SignatureTags): string {
  return tools.formatSignatureHeaderLine('DKIM', tags, true);
}

/** True when both domains have the same organizational domain (public suffix list), RFC 7489 section 3.2. */
export function sameOrganizationalDomain(a: string, b: string): boolean {
  return tools.getAlignment(a, [b]) !== false;
}
