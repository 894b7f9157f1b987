import addressparser from 'nodemailer/lib/addressparser';
import { z } from 'zod';
import { isSenderAllowed } from '../auth/senderPattern.js';
import { CONTINUE, type HeaderField, type PolicyContext, type PolicyUser, type RuleType, type Verdict } from '../policy/types.js';
import { asciiAddress, asciiDomain, domainOfAddress, localPartOfAddress } from '../policy/match/addresses.js';
import { domainListSchema } from '../policy/match/domains.js';
import { quoted } from './shared/replyText.js';

/**
 * The authenticated user may only send as the addresses listed as their `senders` (exact
 * addresses, *@domain, *@*.domain; see src/auth/senderPattern.ts). At `mail` this checks the
 * envelope sender; at `data` the From: header field (every mailbox in it: RFC 5322 section
 * 3.6.2 allows several) and the Sender: field when there is one, since those are what the
 * recipient sees. This is Postfix's reject_sender_login_mismatch, extended to the headers.
 */

const paramsSchema = z.strictObject({
  /**
   * Domains on which the user may also use their own login name as the local part
   * (alice may send as alice@example.com), without listing it in `senders`.
   */
  allowOwnNameOnDomains: domainListSchema
    .refine((domains) => domains.every((domain) => !domain.includes('*')), {
      message: 'list plain domains here, without wildcards',
    })
    .default([]),
  /** Allow the null sender <> (RFC 5321 section 4.5.5), used for bounces and auto-replies. */
  allowNullSender: z.boolean().default(false),
});

export type SenderIdentityParams = z.output<typeof paramsSchema>;

const refuse = (text: string): Verdict => ({ action: 'reject', code: 550, enhanced: '5.7.1', text });

/** The header fields whose addresses must belong to the user; RFC 5322 section 3.6.2. */
const IDENTITY_HEADERS = [
  { key: 'from', label: 'From:' },
  { key: 'sender', label: 'Sender:' },
] as const;

const senderIdentity: RuleType<SenderIdentityParams> = {
  type: 'sender-identity',
  stages: ['mail', 'data'],
  params: paramsSchema,
  description: 'the envelope sender (mail) or the From:/Sender: addresses (data) must be among the user\'s senders',
  create(params) {
    const ownNameDomains = new Set(params.allowOwnNameOnDomains.map(asciiDomain));

    const mayUse = (user: PolicyUser, address: string): boolean => {
      if (isSenderAllowed(user.senders, asciiAddress(address))) return true;
      const domain = domainOfAddress(address);
      return domain !== undefined && ownNameDomains.has(domain) && localPartOfAddress(address) === user.name.toLowerCase();
    };

    const checkEnvelope = (ctx: PolicyContext, user: PolicyUser): Verdict => {
      const sender = ctx.envelope.sender;
      if (sender === undefined) return CONTINUE;
      if (sender === '') {
        return params.allowNullSender ? CONTINUE : refuse(`${quoted(user.name)} may not send with the null sender <>`);
      }
      return mayUse(user, sender) ? CONTINUE : refuse(`${quoted(user.name)} may not send as ${quoted(sender)}`);
    };

    const checkHeaders = (headers: readonly HeaderField[], user: PolicyUser): Verdict => {
      for (const { key, label } of IDENTITY_HEADERS) {
        for (const field of headers) {
          if (field.key !== key) continue;
          const mailboxes = addressparser(field.value, { flatten: true });
          if (mailboxes.length === 0 || mailboxes.some((mailbox) => mailbox.address === '')) {
            // Nothing to compare (an empty field, a group with no members, a bare name): the
            // recipient would see no address of the user's, so it is not the user's to send.
            return refuse(`${quoted(user.name)} may not use ${label} ${quoted(field.value) || '(empty)'}`);
          }
          for (const { address } of mailboxes) {
            if (!mayUse(user, address)) return refuse(`${quoted(user.name)} may not use ${label} ${quoted(address)}`);
          }
        }
      }
      return CONTINUE;
    };

    return {
      evaluate(ctx) {
        const user = ctx.user;
        if (!user) return refuse('authentication required');
        if (ctx.stage === 'data') return ctx.message ? checkHeaders(ctx.message.headers, user) : CONTINUE;
        return checkEnvelope(ctx, user);
      },
    };
  },
};

export default senderIdentity;
