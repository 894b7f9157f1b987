/**
 * The `senders` a user may put in MAIL FROM, as written in the users file:
 *
 * - `alice@example.com`  exactly that address,
 * - `*@example.com`      any address at example.com,
 * - `*@*.example.com`    any address at a subdomain of example.com (not example.com itself;
 *                        list both patterns to allow both).
 *
 * Matching ignores case in the whole address. Domains are case-insensitive (RFC 5321
 * section 2.4); local parts may in theory be case-sensitive, but no mailbox provider treats
 * Alice@ and alice@ as different people, and Postfix's smtpd_sender_login_maps lowercases too.
 * Quoted local parts (RFC 5321 section 4.1.2) and address literals are not supported.
 */

// RFC 5322 atext, plus the UTF-8 of RFC 6531 (SMTPUTF8) local parts. '*' is atext, but a
// literal '*' in a listed address would read as a wildcard, so it is kept out of addresses.
const LOCAL_ATOM = "[A-Za-z0-9!#$%&'+/=?^_`{|}~\\-\\u0080-\\u{10FFFF}]+";
const LOCAL_PART = new RegExp(`^${LOCAL_ATOM}(?:\\.${LOCAL_ATOM})*$`, 'u');
const DNS_LABEL = '[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?';
const DOMAIN = new RegExp(`^(?=.{1,253}$)${DNS_LABEL}(?:\\.${DNS_LABEL})*$`);

/** Why `pattern` is not a valid sender pattern, or undefined when it is. */
export function senderPatternProblem(pattern: string): string | undefined {
  const at = pattern.lastIndexOf('@');
  if (at <= 0 || at === pattern.length - 1) {
    return 'must be an address (user@example.com), *@example.com or *@*.example.com';
  }
  const local = pattern.slice(0, at);
  const domain = pattern.slice(at + 1);
  if (local !== '*' && !LOCAL_PART.test(local)) {
    return local.includes('*')
      ? 'a wildcard must be the whole local part: *@example.com or *@*.example.com'
      : 'has a local part that is not a plain dot-atom (RFC 5322 section 3.4.1)';
  }
  const bareDomain = local === '*' && domain.startsWith('*.') ? domain.slice(2) : domain;
  if (!DOMAIN.test(bareDomain)) {
    return bareDomain.includes('*')
      ? 'a domain wildcard must be the first label only: *@*.example.com'
      : 'has a domain that is not a DNS name (write internationalised domains in their xn-- form)';
  }
  if (local !== '*' && domain !== bareDomain) return 'a domain wildcard needs a wildcard local part: *@*.example.com';
  return undefined;
}

/** Whether `address` (a MAIL FROM address without angle brackets) matches one of `patterns`. */
export function isSenderAllowed(patterns: readonly string[], address: string): boolean {
  const at = address.lastIndexOf('@');
  if (at <= 0 || at === address.length - 1) return false;
  const lowered = address.toLowerCase();
  const domain = lowered.slice(at + 1);
  return patterns.some((raw) => {
    const pattern = raw.toLowerCase();
    if (pattern.startsWith('*@*.')) return domain.endsWith(pattern.slice(3));
    if (pattern.startsWith('*@')) return domain === pattern.slice(2);
    return lowered === pattern;
  });
}
