import addressparser from 'nodemailer/lib/addressparser';
import type { HeaderField } from '../../policy/types.js';
import { domainOfAddress } from '../../policy/match/addresses.js';
import { quoted } from './replyText.js';

/**
 * The author of a message: the one mailbox of its From: field. DMARC and author-matched DKIM
 * speak of "the" From domain (RFC 7489 section 6.6.1): a message with no From, several From
 * fields, or a From listing several mailboxes (RFC 5322 section 3.6.2 allows it, with Sender)
 * has no single author domain to align with, and receivers commonly reject it.
 */
export type Author = { address: string; domain: string } | { problem: string };

export function authorOf(headers: readonly HeaderField[]): Author {
  const fields = headers.filter((field) => field.key === 'from');
  if (fields.length === 0) return { problem: 'the message has no From address' };
  if (fields.length > 1) return { problem: `the message has ${fields.length} From fields; it needs exactly one From address` };
  // flatten: a group ("Team: a@x, b@y;") counts as its members.
  const mailboxes = addressparser(fields[0]!.value, { flatten: true }).filter((mailbox) => mailbox.address !== '');
  if (mailboxes.length === 0) return { problem: `the From field ${quoted(fields[0]!.value) || '(empty)'} holds no address` };
  if (mailboxes.length > 1) return { problem: `the From field holds ${mailboxes.length} addresses; it needs exactly one` };
  const address = mailboxes[0]!.address;
  const domain = domainOfAddress(address);
  if (domain === undefined) return { problem: `the From address ${quoted(address)} has no domain` };
  return { address, domain };
}
