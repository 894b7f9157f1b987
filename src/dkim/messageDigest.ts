import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { MessageParser, relaxedBodyHash, type MailauthBodyHash, type MailauthHeaderLine, type MailauthParsedHeaders } from './mailauthDkim.js';

/** What signing needs from a message: its header fields and the hash of its body. */
export interface MessageDigest {
  /** The header fields as written (folded, binary-safe), top to bottom. */
  headers: MailauthHeaderLine[];
  /** base64 SHA-256 of the body under relaxed canonicalization (RFC 6376 section 3.4.4): the bh= value. */
  bodyHash: string;
}

/**
 * Reads a message once, keeping its header block and hashing its body as it streams, so a
 * large message is never held in memory. mailauth's parser finds where the header ends
 * (RFC 5322 section 2.1, the first empty line); the relaxed hasher canonicalizes the body.
 */
class DigestingParser extends MessageParser {
  private hash: MailauthBodyHash | undefined;
  parsedHeaders: MailauthParsedHeaders | undefined;
  bodyHash: string | undefined;

  override async messageHeaders(headers: MailauthParsedHeaders): Promise<void> {
    this.parsedHeaders = headers;
    this.hash = relaxedBodyHash();
  }

  override async nextChunk(chunk: Buffer): Promise<void> {
    this.hash?.update(chunk);
  }

  override async finalChunk(): Promise<void> {
    // A message that ends inside its header block (no empty line) has an empty body; relaxed
    // canonicalization leaves an empty body empty (RFC 6376 section 3.4.4), so its hash is
    // that of no bytes at all. The parser hands over such headers only after this call.
    this.bodyHash = (this.hash ?? relaxedBodyHash()).digest('base64');
  }
}

/** Digests `chunks` in order: e.g. Postern's own header lines, then the message file. */
export async function digestMessage(source: Readable | AsyncIterable<Buffer>): Promise<MessageDigest> {
  const parser = new DigestingParser();
  await pipeline(source instanceof Readable ? source : Readable.from(source), parser);
  if (parser.bodyHash === undefined) throw new Error('DKIM message digest ended without a body hash');
  return { headers: parser.parsedHeaders?.parsed ?? [], bodyHash: parser.bodyHash };
}
