/**
 * What a rule quotes back to the client (an address, a header value, a file name) comes from
 * the client. An SMTP reply line ends at CRLF and may not exceed 512 octets (RFC 5321 sections
 * 4.1.1 and 4.5.3.1.5), so quoted text loses its control and format characters (a CR or LF
 * would end the reply early; a right-to-left override would make it read differently from what
 * it says) and is shortened.
 */
const UNSAFE = /[\p{Cc}\p{Cf}]/gu;
const MAX_QUOTED_LENGTH = 200;

export function quoted(text: string): string {
  const cleaned = text.replace(UNSAFE, '?');
  const characters = [...cleaned];
  return characters.length <= MAX_QUOTED_LENGTH ? cleaned : `${characters.slice(0, MAX_QUOTED_LENGTH).join('')}...`;
}
