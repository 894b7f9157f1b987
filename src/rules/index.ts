import type { RuleType } from '../policy/types.js';
import bulkSender from './bulkSender.js';
import clientIp from './clientIp.js';
import dkimVerify from './dkimVerify.js';
import dmarc from './dmarc.js';
import headers from './headers.js';
import maxRecipients from './maxRecipients.js';
import messageSize from './messageSize.js';
import rateLimit from './rateLimit.js';
import recipientDomains from './recipientDomains.js';
import senderDomains from './senderDomains.js';
import senderIdentity from './senderIdentity.js';
import spf from './spf.js';

/** Every built-in rule type; policy files name them by `type`. */
export const BUILTIN_RULE_TYPES: readonly RuleType[] = [
  senderIdentity,
  messageSize,
  maxRecipients,
  recipientDomains,
  senderDomains,
  clientIp,
  headers,
  rateLimit,
  spf,
  dkimVerify,
  dmarc,
  bulkSender,
] as RuleType[];
