import { domainToASCII } from 'node:url';

/**
 * Addresses as rules compare them. Domains are case-insensitive (RFC 5321 section 2.4) and an
 * internationalised domain has one canonical spelling, its ASCII (xn--) form (RFC 5890), so
 * "Bücher.Example" and "xn--bcher-kva.example" are the same domain. Whole addresses are
 * compared case-insensitively too, as Postfix does: see src/auth/senderPattern.ts.
 */

/** The domain in its lower-case ASCII form, without a trailing root dot; address literals ([192.0.2.1]) lower-cased. */
export function asciiDomain(domain: string): string {
  const bare = domain.endsWith('.') ? domain.slice(0, -1) : domain;
  if (bare.startsWith('[')) return bare.toLowerCase();
  // domainToASCII returns '' for what is not a domain at all; such a domain then only ever
  // equals itself, which is the most a rule can say about it.
  return domainToASCII(bare) || bare.toLowerCase();
}

/** The domain part of `address` in ASCII form, or undefined when there is none (the null sender ''). */
export function domainOfAddress(address: string): string | undefined {
  const at = address.lastIndexOf('@');
  if (at <= 0 || at === address.length - 1) return undefined;
  return asciiDomain(address.slice(at + 1));
}

/** The local part of `address`, lower-cased, or undefined when there is none. */
export function localPartOfAddress(address: string): string | undefined {
  const at = address.lastIndexOf('@');
  if (at <= 0 || at === address.length - 1) return undefined;
  return address.slice(0, at).toLowerCase();
}

/** `address` with a lower-case local part and an ASCII domain, ready for sender patterns; unchanged when it has no '@'. */
export function asciiAddress(address: string): string {
  const local = localPartOfAddress(address);
  const domain = domainOfAddress(address);
  return local === undefined || domain === undefined ? address : `${local}@${domain}`;
}
