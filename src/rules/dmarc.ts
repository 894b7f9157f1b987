import { isIP } from 'node:net';
import { z } from 'zod';
import { CONTINUE, type PolicyContext, type RuleDeps, type RuleType, type Verdict } from '../policy/types.js';
import { domainOfAddress } from '../policy/match/addresses.js';
import { isAligned, type AlignmentMode } from './shared/alignment.js';
import { authorOf } from './shared/authorAddress.js';
import { lookUpDmarcRecord } from './shared/dmarcRecord.js';
import { hasDkimSignature } from './shared/dkimSignatures.js';
import { spfForEgress } from './shared/egressSpf.js';
import { ownSignatureAlignment, signingAlignment } from './shared/outgoingDkim.js';
import { limitReply, listed } from './shared/replyLimit.js';
import { quoted } from './shared/replyText.js';

/**
 * DMARC preflight (RFC 7489): the From domain must publish a DMARC record, and the message as
 * it will leave must pass DMARC at the receiver, that is align by at least one of:
 * - DKIM (section 3.1.1): the d= Postern signs it with (`deps.signing`), or a signature the
 *   client made that verifies now, aligned with the From domain per the record's adkim=;
 * - SPF (section 3.1.2): the envelope sender's domain aligned with the From domain per aspf=,
 *   and SPF of that domain passing for every address in `egressIps` (where receivers see the
 *   mail come from). Without `egressIps` SPF cannot be known here and only DKIM can align.
 * Receivers with p=reject refuse what fails, and the large mailbox providers junk or refuse
 * unaligned mail whatever the policy; refusing here gives the sender a reason they can act on.
 *
 * Replies: several or no From addresses, and a missing record, 550 5.7.1; no alignment 550
 * 5.7.26 ("multiple authentication checks failed", RFC 7372 section 3.3, as receivers answer
 * DMARC failures). A DNS look-up that fails for a reason that may pass (and could still decide)
 * defers with 451 4.4.3 ("directory server failure", RFC 3463: DNS did not answer).
 * With `requireRecord: false` a domain without a record is still held to alignment, relaxed,
 * as the large mailbox providers do for bulk mail.
 */

const egressAddressSchema = z.string().refine((value) => isIP(value) !== 0, { message: 'must be an IPv4 or IPv6 address' });

const paramsSchema = z.strictObject({
  /** Refuse mail whose From domain (or its organizational domain) publishes no DMARC record. */
  requireRecord: z.boolean().default(true),
  /** The public addresses mail leaves from (IPv4 and IPv6), for SPF alignment; empty: only DKIM can align. */
  egressIps: z.array(egressAddressSchema).default([]),
});

export type DmarcParams = z.output<typeof paramsSchema>;

/** Whether the SPF identity aligns and passes, and if not, why; `temporary` when DNS did not answer. */
type SpfAlignment = { aligned: true } | { aligned: false; temporary: boolean; reason: string };

async function spfAlignment(ctx: PolicyContext, fromDomain: string, mode: AlignmentMode, params: DmarcParams, deps: RuleDeps): Promise<SpfAlignment> {
  const sender = ctx.envelope.sender ?? '';
  const senderDomain = domainOfAddress(sender);
  // RFC 7489 section 3.1.2: with the null sender receivers check the HELO name, Postern's own.
  if (senderDomain === undefined) return { aligned: false, temporary: false, reason: 'the envelope sender is the null sender <>' };
  if (!isAligned(fromDomain, senderDomain, mode)) {
    return { aligned: false, temporary: false, reason: `the envelope sender ${quoted(sender)} is not ${mode === 's' ? 'strictly ' : ''}aligned` };
  }
  if (params.egressIps.length === 0) return { aligned: false, temporary: false, reason: 'no egress addresses are set here to check SPF' };
  // mailauth takes ASCII domains only: hand it the xn-- form, lower-cased.
  const asciiSender = `${sender.slice(0, sender.lastIndexOf('@'))}@${senderDomain}`;
  const spf = await spfForEgress(asciiSender, params.egressIps, deps.resolver);
  if (spf.result === 'pass') return { aligned: true };
  if (spf.result === 'temperror') {
    return { aligned: false, temporary: true, reason: `the SPF record of ${quoted(senderDomain)} could not be checked (DNS lookup failed)` };
  }
  return { aligned: false, temporary: false, reason: `${quoted(senderDomain)} does not authorise ${spf.ip} (SPF ${spf.spfResult})` };
}

const dmarc: RuleType<DmarcParams> = {
  type: 'dmarc',
  stages: ['data'],
  params: paramsSchema,
  description: 'the From domain must publish DMARC, and the message as it leaves must align by DKIM or SPF',
  create(params, deps) {
    return {
      async evaluate(ctx): Promise<Verdict> {
        const message = ctx.message;
        if (!message) return CONTINUE;
        const author = authorOf(message.headers);
        if ('problem' in author) return { action: 'reject', code: 550, enhanced: '5.7.1', text: author.problem };
        const fromDomain = author.domain;
        const shownDomain = quoted(fromDomain);

        const record = await lookUpDmarcRecord(fromDomain, deps.resolver);
        if (record.status === 'temperror') {
          return { action: 'defer', code: 451, enhanced: '4.4.3', text: limitReply(`the DMARC record of ${shownDomain} could not be looked up (DNS lookup failed); try again later`) };
        }
        if (record.status === 'none' && params.requireRecord) {
          return { action: 'reject', code: 550, enhanced: '5.7.1', text: limitReply(`${shownDomain} publishes no DMARC record (a TXT record at _dmarc.${shownDomain})`) };
        }
        // RFC 7489 section 6.3: adkim and aspf default to relaxed.
        const adkim = record.status === 'found' ? record.adkim : 'r';
        const aspf = record.status === 'found' ? record.aspf : 'r';

        // Cheapest first: Postern's own signing needs no look-up, SPF a few, the client's signature the whole message.
        const signing = signingAlignment(fromDomain, adkim, deps.signing);
        if (signing.aligned) return CONTINUE;
        const spf = await spfAlignment(ctx, fromDomain, aspf, params, deps);
        if (spf.aligned) return CONTINUE;
        const own = hasDkimSignature(message.headers) ? await ownSignatureAlignment(fromDomain, adkim, message, deps, ctx.signal) : undefined;
        if (own?.aligned) return CONTINUE;

        const temporary = [...(own?.temporary ? own.reasons : []), ...(spf.temporary ? [spf.reason] : [])];
        if (temporary.length > 0) {
          return { action: 'defer', code: 451, enhanced: '4.4.3', text: limitReply(`mail From ${shownDomain} could not be checked for alignment: ${listed(temporary)}; try again later`) };
        }
        const reasons = [...signing.reasons, ...(own && !own.aligned ? own.reasons : []), spf.reason];
        const published = record.status === 'found' ? { policy: record.policy, atOrganizationalDomain: record.fromOrganizationalDomain } : { policy: 'no record' };
        deps.logger.info({ fromDomain, adkim, aspf, ...published }, 'DMARC preflight: the message would not align');
        return { action: 'reject', code: 550, enhanced: '5.7.26', text: limitReply(`mail From ${shownDomain} would not align: ${listed(reasons)}`) };
      },
    };
  },
};

export default dmarc;
