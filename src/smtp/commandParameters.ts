/**
 * The parameters Postern takes on MAIL FROM and RCPT TO: those of the extensions its EHLO
 * reply offers. smtp-server passes any other keyword through, which would let a client
 * believe a request was honoured that nothing implements: REQUIRETLS (RFC 8689) or DSN's
 * NOTIFY (RFC 3461) accepted silently is a promise broken. RFC 5321 §4.1.1.11 answers an
 * unrecognised parameter with 555, as Postfix does ("555 5.5.4 Unsupported option").
 */
const MAIL_PARAMETERS = new Set([
  'SIZE', // RFC 1870
  'BODY', // RFC 6152
  'SMTPUTF8', // RFC 6531
  // RFC 4954 §5: a server offering AUTH accepts AUTH= on MAIL FROM (the value is not trusted).
  'AUTH',
]);
const RCPT_PARAMETERS = new Set<string>();

/** The first parameter of the command that Postern does not take, or undefined. */
export function unsupportedParameter(command: 'mail' | 'rcpt', args: Record<string, unknown> | false | undefined): string | undefined {
  if (!args) return undefined;
  const known = command === 'mail' ? MAIL_PARAMETERS : RCPT_PARAMETERS;
  return Object.keys(args).find((name) => !known.has(name.toUpperCase()));
}

/** The parameter's name as it may appear in a reply: a keyword is letters, digits and '-' (RFC 5321 §4.1.2). */
export function printableParameter(name: string): string {
  const clean = name.replace(/[^A-Za-z0-9-]/g, '?');
  return clean.length > 40 ? `${clean.slice(0, 40)}...` : clean;
}
