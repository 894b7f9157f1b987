import { z } from 'zod';
import { CONTINUE, type HeaderField, type PolicyContext, type RuleType, type Verdict } from '../policy/types.js';
import { authorOf } from './shared/authorAddress.js';
import { lookUpDmarcRecord } from './shared/dmarcRecord.js';
import { outgoingDkimAlignment } from './shared/outgoingDkim.js';
import { limitReply } from './shared/replyLimit.js';
import { quoted } from './shared/replyText.js';

/**
 * What the large mailbox providers publish as requirements for bulk senders (Gmail and Yahoo
 * since 2024, Microsoft since 2025), checked before the message leaves:
 * - List-Unsubscribe (RFC 2369) with an https: URI, and List-Unsubscribe-Post:
 *   List-Unsubscribe=One-Click, so the receiver can unsubscribe with one POST (RFC 8058);
 * - a DKIM signature aligned with the From domain (Postern's own, or the client's that
 *   verifies; see shared/outgoingDkim.ts), per the record's adkim= (relaxed without a record);
 * - a DMARC record for the From domain, found as the dmarc rule finds it (RFC 7489 6.6.3).
 * RFC 8058 section 4 also wants both List-Unsubscribe fields covered by that DKIM signature:
 * that is the signer's part.
 *
 * A message is bulk when its user is in one of `groups`, it says so itself (Precedence: bulk
 * or list, RFC 3834 section 3.1.8; or a List-Id, RFC 2919), or it has at least
 * `minRecipients` recipients (0, the default, does not count them). Other messages continue.
 *
 * Every missing item is named in one 550 5.7.1 reply (plain ASCII, under 400 characters), so
 * the sender fixes them all at once. When nothing is known to be missing but a DNS look-up
 * did not answer, the message is deferred with 451 4.4.3 (RFC 3463 "directory server failure").
 */

const paramsSchema = z.strictObject({
  /** Users in any of these groups send bulk mail, whatever the message says. */
  groups: z.array(z.string().min(1)).default([]),
  /** A message to this many recipients or more is bulk; 0 turns the count off. */
  minRecipients: z.number().int().min(0).default(0),
});

export type BulkSenderParams = z.output<typeof paramsSchema>;

/** Under the 400 characters the reply must stay within. */
const MAX_TEXT = 399;

const valuesOf = (headers: readonly HeaderField[], key: string): string[] => headers.filter((field) => field.key === key).map((field) => field.value);

/** Why the message counts as bulk, for logs and tags; undefined when it does not. */
function bulkReason(ctx: PolicyContext, headers: readonly HeaderField[], params: BulkSenderParams): string | undefined {
  const groups = ctx.user?.groups ?? [];
  if (params.groups.some((group) => groups.includes(group))) return 'group';
  if (valuesOf(headers, 'precedence').some((value) => /^(?:bulk|list)$/i.test(value.trim()))) return 'precedence';
  if (valuesOf(headers, 'list-id').length > 0) return 'list-id';
  if (params.minRecipients > 0 && ctx.envelope.recipients.length >= params.minRecipients) return 'recipients';
  return undefined;
}

/** RFC 2369 section 2: each URI in angle brackets, the list separated by commas. */
function hasHttpsUnsubscribe(headers: readonly HeaderField[]): boolean {
  return valuesOf(headers, 'list-unsubscribe').some((value) => /<\s*https:\/\/[^\s>]+\s*>/i.test(value));
}

/** RFC 8058 section 3.1: the field holds the single key/value pair List-Unsubscribe=One-Click. */
function hasOneClickPost(headers: readonly HeaderField[]): boolean {
  return valuesOf(headers, 'list-unsubscribe-post').some((value) => /^List-Unsubscribe\s*=\s*One-Click$/i.test(value.trim()));
}

const bulkSender: RuleType<BulkSenderParams> = {
  type: 'bulk-sender',
  stages: ['data'],
  params: paramsSchema,
  description: 'bulk mail must carry one-click unsubscribe (RFC 8058), aligned DKIM and a DMARC record',
  create(params, deps) {
    return {
      async evaluate(ctx): Promise<Verdict> {
        const message = ctx.message;
        if (!message) return CONTINUE;
        const headers = message.headers;
        const why = bulkReason(ctx, headers, params);
        if (why === undefined) return CONTINUE;

        const missing: string[] = [];
        const unanswered: string[] = [];
        if (!hasHttpsUnsubscribe(headers)) missing.push('a List-Unsubscribe header with an https: URI');
        if (!hasOneClickPost(headers)) missing.push('List-Unsubscribe-Post: List-Unsubscribe=One-Click (RFC 8058)');

        const author = authorOf(headers);
        let from = '';
        if ('problem' in author) {
          missing.push('exactly one From address');
        } else {
          from = ` from ${quoted(author.domain)}`;
          const record = await lookUpDmarcRecord(author.domain, deps.resolver);
          if (record.status === 'temperror') unanswered.push('its DMARC record');
          const dkim = await outgoingDkimAlignment(author.domain, record.status === 'found' ? record.adkim : 'r', message, deps, ctx.signal);
          if (!dkim.aligned && dkim.temporary) unanswered.push('its DKIM key');
          else if (!dkim.aligned) missing.push('a DKIM signature aligned with the From domain');
          if (record.status === 'none') missing.push('a DMARC record');
        }

        if (missing.length > 0) {
          deps.logger.info({ bulk: why, missing }, 'bulk mail refused: sender requirements missing');
          return { action: 'reject', code: 550, enhanced: '5.7.1', text: limitReply(`bulk mail${from} must have: ${missing.join('; ')}`, { max: MAX_TEXT, ascii: true }) };
        }
        if (unanswered.length > 0) {
          const text = `bulk mail${from} could not be checked: ${unanswered.join(' and ')} could not be looked up (DNS lookup failed); try again later`;
          return { action: 'defer', code: 451, enhanced: '4.4.3', text: limitReply(text, { max: MAX_TEXT, ascii: true }) };
        }
        return { action: 'continue', annotations: { tags: ['bulk'] } };
      },
    };
  },
};

export default bulkSender;
