import { domainToASCII } from 'node:url';
import { isSenderAllowed, senderPatternProblem } from '../auth/senderPattern.js';

/**
 * Domain lists in policy files (`when.senderDomains`, `when.recipientDomains`): `example.com`
 * is that domain exactly, `*.example.com` any subdomain of it (not example.com itself; list
 * both to mean both), the same reading as `*@example.com` and `*@*.example.com` in a user's
 * senders, whose matcher this reuses. Domains are case-insensitive (RFC 5321 section 2.4) and
 * internationalised ones are compared in their ASCII (xn--) form (RFC 5890), so `bücher.de`
 * in a file matches a sender at `xn--bcher-kva.de` and the other way round.
 */

/** Why `pattern` is not a domain or `*.domain`, or undefined when it is. */
export function domainPatternProblem(pattern: string): string | undefined {
  const ascii = asciiPattern(pattern);
  if (ascii === undefined) return 'is not a domain name';
  const problem = senderPatternProblem(`*@${ascii}`);
  if (problem === undefined) return undefined;
  return ascii.includes('*') ? 'has a wildcard that is not the whole first label (write *.example.com)' : 'is not a domain name';
}

/** The pattern as it is compared: lower case, ASCII. Assumes domainPatternProblem found none. */
export function normalizeDomainPattern(pattern: string): string {
  return asciiPattern(pattern) ?? pattern.toLowerCase();
}

/** Whether `domain` (ASCII, any case) matches one of the normalised `patterns`. */
export function domainMatches(patterns: readonly string[], domain: string): boolean {
  // isSenderAllowed matches whole addresses; a placeholder local part turns the domain into one.
  return isSenderAllowed(
    patterns.map((p) => `*@${p}`),
    `x@${domain}`,
  );
}

/**
 * The domain of an envelope address in ASCII form, or undefined when it has none: the null
 * sender '' and anything without an '@'. An SMTPUTF8 (RFC 6531) domain is converted.
 */
export function addressDomain(address: string): string | undefined {
  const at = address.lastIndexOf('@');
  if (at < 0 || at === address.length - 1) return undefined;
  const domain = address.slice(at + 1);
  const ascii = domainToASCII(domain);
  return ascii === '' ? undefined : ascii.toLowerCase();
}

function asciiPattern(pattern: string): string | undefined {
  const wildcard = pattern.startsWith('*.');
  const bare = wildcard ? pattern.slice(2) : pattern;
  if (bare === '') return undefined;
  const ascii = domainToASCII(bare);
  if (ascii === '') return undefined;
  return `${wildcard ? '*.' : ''}${ascii.toLowerCase()}`;
}
