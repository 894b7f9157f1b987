import tools from 'mailauth/lib/tools.js';
import { asciiDomain } from '../../policy/match/addresses.js';

/**
 * Identifier alignment (RFC 7489 section 3.1): does a domain that authenticated the message
 * (a DKIM d=, an SPF-checked envelope sender domain) stand for the From domain?
 * - strict ('s'): the two are the same domain;
 * - relaxed ('r', the default): they share an organizational domain (RFC 7489 section 3.2,
 *   found through the public suffix list mailauth carries), so d=mail.example.com aligns with
 *   From news.example.com, but example.co.uk does not align with other.co.uk.
 */
export type AlignmentMode = 'r' | 's';

export function isAligned(fromDomain: string, authenticatedDomain: string, mode: AlignmentMode): boolean {
  const from = asciiDomain(fromDomain);
  const authenticated = asciiDomain(authenticatedDomain);
  if (from === authenticated) return true;
  if (mode === 's') return false;
  return tools.getAlignment(from, [authenticated]) !== false;
}

/** The alignment mode a record's adkim= or aspf= tag asks for; anything but "s" is relaxed (RFC 7489 section 6.3). */
export function alignmentMode(tag: unknown): AlignmentMode {
  return typeof tag === 'string' && tag.trim().toLowerCase() === 's' ? 's' : 'r';
}
