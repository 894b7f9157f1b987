import { z } from 'zod';
import { CONTINUE, type Refusal, type RuleType, type Stage } from '../policy/types.js';
import { CidrList, cidrListSchema, parseClientAddress } from '../policy/match/networks.js';
import { quoted } from './shared/replyText.js';

/**
 * Which client addresses may connect, log in or send: allow and deny lists of CIDR networks,
 * IPv4 and IPv6; deny wins, and with an allow list only those pass. At `connect` the refusal
 * is the greeting itself, 554 (RFC 5321 section 3.1: the server may answer the connection
 * with 554 and then only QUIT is accepted).
 */

const paramsSchema = z
  .strictObject({
    /** When given, only clients in these networks pass. */
    allow: cidrListSchema.optional(),
    /** Clients in these networks never pass; a deny entry wins over an allow entry. */
    deny: cidrListSchema.optional(),
  })
  .refine((params) => params.allow !== undefined || params.deny !== undefined, {
    message: 'give an allow list, a deny list or both',
  });

export type ClientIpParams = z.output<typeof paramsSchema>;

function refusal(stage: Stage, address: string): Refusal {
  const shown = quoted(address);
  switch (stage) {
    case 'connect':
      return { action: 'reject', code: 554, enhanced: '5.7.1', text: `connections from ${shown} are not allowed` };
    case 'auth':
      return { action: 'reject', code: 550, enhanced: '5.7.1', text: `logins from ${shown} are not allowed` };
    default:
      return { action: 'reject', code: 550, enhanced: '5.7.1', text: `sending from ${shown} is not allowed` };
  }
}

const clientIp: RuleType<ClientIpParams> = {
  type: 'client-ip',
  stages: ['connect', 'auth', 'mail'],
  params: paramsSchema,
  description: 'the client address must pass the allow and deny CIDR lists',
  create(params) {
    const allow = params.allow === undefined ? undefined : new CidrList(params.allow);
    const deny = new CidrList(params.deny ?? []);
    return {
      evaluate(ctx) {
        const address = parseClientAddress(ctx.client.address);
        // An address that does not parse is in no network: a deny list cannot name it and an
        // allow list does not contain it.
        const permitted = address === undefined ? allow === undefined : !deny.contains(address) && (allow === undefined || allow.contains(address));
        if (permitted) return CONTINUE;
        return refusal(ctx.stage, address?.toString() ?? ctx.client.address);
      },
    };
  },
};

export default clientIp;
