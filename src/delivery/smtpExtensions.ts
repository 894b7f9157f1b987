import type { NodemailerError } from 'nodemailer';
import type SMTPConnection from 'nodemailer/lib/smtp-connection';
import type { SMTPEnvelope } from 'nodemailer/lib/smtp-connection';
import type { EightBitPlacement } from '../spool/eightBitContent.js';

/**
 * What a message needs the next hop to offer before any of it may go there. nodemailer sends
 * 8-bit data and UTF-8 addresses to any server, with BODY=8BITMIME or SMTPUTF8 only when the
 * server offers them; RFC 6152 §3 and RFC 6531 §3.2 forbid that. Postern does not convert:
 * the message is DKIM-signed as queued, and rewriting it to 7 bit would break the signature.
 */
export interface TransferNeeds {
  /** The message holds 8-bit bytes (RFC 6152). */
  eightBitMime: boolean;
  /** The client asked for SMTPUTF8 and the header fields hold UTF-8 (RFC 6532, RFC 6531 §3.4). */
  utf8Headers: boolean;
}

/** The needs of a queued message from what its envelope records. */
export function transferNeeds(message: { eightBit?: EightBitPlacement | undefined; smtpUtf8?: boolean | undefined }): TransferNeeds {
  return {
    eightBitMime: message.eightBit !== undefined,
    utf8Headers: message.smtpUtf8 === true && message.eightBit === 'headers',
  };
}

/** The fields of nodemailer's connection read here; not in its types, stable since nodemailer 1. */
interface ConnectionInternals {
  _supportedExtensions?: unknown;
  _sendCommand(command: string, logged?: string): void;
}

/** The extensions the server named in its EHLO reply, upper case; undefined when unknown. */
export function serverExtensions(connection: SMTPConnection): readonly string[] | undefined {
  const extensions = (connection as unknown as ConnectionInternals)._supportedExtensions;
  return Array.isArray(extensions) ? (extensions as string[]) : undefined;
}

/**
 * Why this server may not have the message, as a failure of it, or undefined when it may.
 * When nodemailer's bookkeeping cannot be read, nothing is refused: the message goes as
 * before, rather than every message failing after an upgrade of nodemailer.
 */
export function missingExtension(connection: SMTPConnection, envelope: SMTPEnvelope, needs: TransferNeeds, host: string): NodemailerError | undefined {
  const offered = serverExtensions(connection);
  if (!offered) return undefined;
  const addresses = [envelope.from || '', ...[envelope.to ?? []].flat()].map(String);
  // IDN domains are A-labels by now (see normaliseEnvelope): only a UTF-8 local part needs SMTPUTF8.
  if (!offered.includes('SMTPUTF8') && addresses.some((address) => /[^\x00-\x7f]/.test(address))) {
    return refusal(`5.6.7 SMTPUTF8 is required for a non-ASCII address, but was not offered by host ${host}`);
  }
  if (!offered.includes('SMTPUTF8') && needs.utf8Headers) {
    return refusal(`5.6.9 SMTPUTF8 is required for UTF-8 header fields, but was not offered by host ${host}`);
  }
  if (!offered.includes('8BITMIME') && needs.eightBitMime) {
    return refusal(`5.6.3 8BITMIME is required for 8-bit content, but was not offered by host ${host}; Postern does not convert signed messages`);
  }
  return undefined;
}

/**
 * Sends through `send` (which must write MAIL FROM synchronously, as nodemailer's send()
 * does) with SMTPUTF8 added to MAIL FROM. nodemailer adds it only for a non-ASCII address;
 * RFC 6531 §3.4 asks for it whenever the message needs it, UTF-8 header fields included.
 */
export function withSmtpUtf8(connection: SMTPConnection, send: () => void): void {
  const internals = connection as unknown as ConnectionInternals;
  const own = Object.prototype.hasOwnProperty.call(internals, '_sendCommand');
  const original = internals._sendCommand;
  internals._sendCommand = function (this: ConnectionInternals, command: string, logged?: string) {
    const withKeyword = /^MAIL FROM:/i.test(command) && !/ SMTPUTF8(?: |$)/i.test(command) ? `${command} SMTPUTF8` : command;
    original.call(this, withKeyword, logged === undefined ? undefined : withKeyword);
  };
  try {
    send();
  } finally {
    if (own) internals._sendCommand = original;
    else delete (internals as Partial<ConnectionInternals>)._sendCommand;
  }
}

function refusal(reason: string): NodemailerError {
  const err: NodemailerError = new Error(reason);
  // Like nodemailer's own checks of an envelope ('API'): the message can never go to this
  // server, so it fails now, with this text as the reason the sender reads in the bounce.
  err.code = 'EENVELOPE';
  err.command = 'API';
  err.response = reason;
  return err;
}
