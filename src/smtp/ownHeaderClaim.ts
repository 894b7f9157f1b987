import type { HeaderField } from '../policy/types.js';

/**
 * Finds a header field in a submitted message that claims to have been written by Postern
 * itself: an Authentication-Results field whose authserv-id is Postern's host (RFC 8601 §5: a
 * host must not pass on results that claim to be its own), or a field in Postern's X-Postern-
 * name space. A client writing one of these forges what a reader trusts about who submitted
 * the message, and how.
 *
 * A Received field "by" Postern's host is not refused: a message Postern relayed to an
 * internal mailbox and forwarded back through it carries one legitimately, and trace fields
 * only ever grow (RFC 5321 §4.4); a loop is stopped by the hop limit instead.
 *
 * Returns the first such field's name, or undefined. The message file stays the client's bytes
 * (what policy reads and DKIM signs), so such a message is refused rather than edited.
 */
export function ownHeaderClaim(fields: readonly HeaderField[], hostname: string): string | undefined {
  const host = hostname.toLowerCase();
  for (const field of fields) {
    if (field.key.startsWith('x-postern-')) return field.name;
    if (field.key === 'authentication-results' && authservId(field.value) === host) return field.name;
  }
  return undefined;
}

/** The authserv-id, the first token of an Authentication-Results field (RFC 8601 §2.2), lower case. */
function authservId(value: string): string | undefined {
  const match = /^\s*(?:\([^)]*\)\s*)?([^\s;()]+)/.exec(value);
  return match?.[1]?.toLowerCase().replace(/\.$/, '');
}
