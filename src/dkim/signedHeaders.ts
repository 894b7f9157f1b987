import type { MailauthHeaderLine, MailauthSigningHeaderLines } from './mailauthDkim.js';
import { signingHeaderLines } from './mailauthDkim.js';

/**
 * The header fields a signature covers (RFC 6376 section 5.4.1: those whose change would alter
 * what the recipient reads or how the message is handled), in their usual spelling for h=.
 * Received and Return-Path are never signed: later hops add and rewrite them.
 */
export const SIGNED_FIELDS = [
  'From',
  'To',
  'Cc',
  'Subject',
  'Date',
  'Message-ID',
  'Reply-To',
  'In-Reply-To',
  'References',
  'MIME-Version',
  'Content-Type',
  'Content-Transfer-Encoding',
  'List-Unsubscribe',
  'List-Unsubscribe-Post',
  'List-Id',
  'Feedback-ID',
] as const;

/** Over-signed always: a copy added after signing (a second From, a new Subject) breaks the signature. */
export const OVERSIGNED_FIELDS = ['From', 'To', 'Subject', 'Date', 'Message-ID'] as const;

/** Over-signed when the message has them: adding one where there was none is a normal thing for a list to do. */
export const OVERSIGNED_WHEN_PRESENT = ['Cc', 'Reply-To'] as const;

/**
 * The fields to sign and the h= list. Every present instance of a signed field is listed
 * (bottom-up, as verifiers pair names with instances, RFC 6376 section 5.4.2), then each
 * over-signed name once more: that name has no instance left, so it adds nothing to the hash
 * here, but a verifier finding an instance added later hashes it and fails (section 8.15).
 */
export function selectSignedHeaders(headers: MailauthHeaderLine[]): MailauthSigningHeaderLines {
  const selected = signingHeaderLines(headers, SIGNED_FIELDS);
  const present = new Set(selected.headers.map((header) => header.key));
  const extra = [...OVERSIGNED_FIELDS, ...OVERSIGNED_WHEN_PRESENT.filter((name) => present.has(name.toLowerCase()))];
  return { headers: selected.headers, keys: [selected.keys, ...extra].filter((part) => part !== '').join(': ') };
}
