import { isAcceptableHeloName } from './addressSyntax.js';

/**
 * The trace header Postern prepends to every message it accepts (RFC 5321 §4.4). It records
 * who handed the message over, how (RFC 3848: ESMTPSA = ESMTP + TLS + AUTH), over which TLS
 * version and cipher, and the queue id that ties it to Postern's logs.
 */
export interface ReceivedHeaderInput {
  /**
   * The name the client gave in EHLO/HELO. smtp-server only keeps control characters out of
   * it; anything that is not a domain or an address literal is written in a safe form.
   */
  helo: string;
  clientAddress: string;
  /** Postern's own host name. */
  hostname: string;
  queueId: string;
  tlsProtocol?: string;
  tlsCipher?: string;
  /** Present only when the operator asked for the user to be named (received.includeAuthUser). */
  authenticatedUser?: string;
  date: Date;
}

export function receivedHeader(input: ReceivedHeaderInput): string {
  // Postern only accepts mail from authenticated clients, so the A is always there.
  const protocol = input.tlsProtocol ? 'ESMTPSA' : 'ESMTPA';
  const lines = [`Received: from ${heloForHeader(input.helo)} (${addressLiteral(input.clientAddress)})`];
  if (input.tlsProtocol) {
    lines.push(`(using ${input.tlsProtocol} with cipher ${input.tlsCipher ?? 'unknown'})`);
  }
  if (input.authenticatedUser !== undefined) {
    lines.push(`(Authenticated sender: ${input.authenticatedUser})`);
  }
  lines.push(`by ${input.hostname} (Postern) with ${protocol} id ${input.queueId};`);
  lines.push(rfc5322Date(input.date));
  return `${lines.join('\r\n\t')}\r\n`;
}

/**
 * RFC 5321 §4.4 wants the EHLO argument here, which a client can make anything. A name that
 * is not a domain or address literal keeps only the characters that cannot open or close a
 * comment, end the field or bring 8-bit bytes into a 7-bit header; the rest become '?'.
 */
function heloForHeader(helo: string): string {
  return isAcceptableHeloName(helo) ? helo : helo.replace(/[^A-Za-z0-9.\-_:[\]]/g, '?').slice(0, 255) || '?';
}

/** RFC 5321 §4.1.3 address literal: [192.0.2.1] or [IPv6:2001:db8::1]. */
function addressLiteral(address: string): string {
  return address.includes(':') ? `[IPv6:${address}]` : `[${address}]`;
}

const DAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/** RFC 5322 §3.3 date-time in UTC with a numeric zone: "Mon, 30 Nov 2026 00:55:37 +0000". */
export function rfc5322Date(date: Date): string {
  const pad = (n: number) => String(n).padStart(2, '0');
  return (
    `${DAYS[date.getUTCDay()]}, ${date.getUTCDate()} ${MONTHS[date.getUTCMonth()]} ${date.getUTCFullYear()} ` +
    `${pad(date.getUTCHours())}:${pad(date.getUTCMinutes())}:${pad(date.getUTCSeconds())} +0000`
  );
}
