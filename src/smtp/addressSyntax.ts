/**
 * The mailbox syntax Postern accepts in MAIL FROM and RCPT TO: RFC 5321 §4.1.2 with the
 * dot-atom local part only, a DNS domain or an address literal, within the §4.5.3.1 lengths.
 *
 * Quoted local parts ("a,b"@example.com, "x@y"@example.com) are refused although RFC 5321
 * allows them: almost no real mailbox uses one, and every one is a chance for a later hop (or
 * an address parser such as the one in the outbound client) to read a comma, an @ or a
 * percent sign as routing. Postern relays what it accepts exactly; refusing ambiguous forms at
 * the door is what keeps that promise.
 */

// RFC 5322 atext; with SMTPUTF8 (RFC 6531 §3.3) any UTF-8 beyond ASCII as well.
const ATEXT_ASCII = "A-Za-z0-9!#$%&'*+/=?^_`{|}~\\-";
const ATEXT_UTF8 = `${ATEXT_ASCII}\\u0080-\\u{10FFFF}`;
const DNS_LABEL_ASCII = '[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?';
const DNS_LABEL_UTF8 = '[A-Za-z0-9\\u0080-\\u{10FFFF}](?:[A-Za-z0-9\\-\\u0080-\\u{10FFFF}]{0,61}[A-Za-z0-9\\u0080-\\u{10FFFF}])?';

const dotAtom = (atext: string) => new RegExp(`^[${atext}]+(?:\\.[${atext}]+)*$`, 'u');
const domain = (label: string) => new RegExp(`^${label}(?:\\.${label})*$`, 'u');

const LOCAL_ASCII = dotAtom(ATEXT_ASCII);
const LOCAL_UTF8 = dotAtom(ATEXT_UTF8);
const DOMAIN_ASCII = domain(DNS_LABEL_ASCII);
const DOMAIN_UTF8 = domain(DNS_LABEL_UTF8);
const IPV4 = /^(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(?:\.(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;
const IPV6_CHARS = /^[0-9A-Fa-f:.]{2,45}$/;

export type MailboxProblem = 'syntax' | 'quoted-local-part' | 'too-long' | 'needs-smtputf8';

/** Why `address` is not acceptable, or undefined when it is. The empty reverse-path is not handled here. */
export function mailboxProblem(address: string, options: { smtpUtf8: boolean }): MailboxProblem | undefined {
  const at = address.lastIndexOf('@');
  if (at <= 0 || at === address.length - 1) return 'syntax';
  const local = address.slice(0, at);
  const host = address.slice(at + 1);
  if (local.startsWith('"')) return 'quoted-local-part';
  // RFC 5321 §4.5.3.1.1 and .2: local part 64 octets, domain 255; the path as a whole 256.
  if (Buffer.byteLength(local) > 64 || Buffer.byteLength(host) > 255 || Buffer.byteLength(address) > 254) return 'too-long';
  if (host.startsWith('[')) {
    if (!isAddressLiteral(host)) return 'syntax';
  } else if (!DOMAIN_UTF8.test(host)) return 'syntax';
  if (!LOCAL_UTF8.test(local)) return 'syntax';
  // Well formed as an internationalised address, which only SMTPUTF8 allows (RFC 6531 §3.3).
  if (!options.smtpUtf8 && (!LOCAL_ASCII.test(local) || !(host.startsWith('[') || DOMAIN_ASCII.test(host)))) return 'needs-smtputf8';
  return undefined;
}

/** RFC 5321 §4.1.3: [192.0.2.1] or [IPv6:2001:db8::1]. */
function isAddressLiteral(host: string): boolean {
  if (!host.endsWith(']')) return false;
  const inner = host.slice(1, -1);
  if (inner.toLowerCase().startsWith('ipv6:')) return IPV6_CHARS.test(inner.slice(5)) && inner.includes(':', 5);
  return IPV4.test(inner);
}

/** The EHLO/HELO argument as it may appear in a Received header: a domain or an address literal. */
export function isAcceptableHeloName(name: string): boolean {
  if (name.startsWith('[')) return isAddressLiteral(name);
  return name.length <= 255 && DOMAIN_ASCII.test(name);
}
