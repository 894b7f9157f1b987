import type { DNSResolver } from 'mailauth';
import { spf as checkSpf } from 'mailauth/lib/spf/index.js';
import type { DnsResolver } from '../../policy/types.js';

/**
 * SPF (RFC 7208) of an envelope sender for each address the gateway's mail leaves from, called
 * as the spf rule calls mailauth: receivers run check_host() with the egress address as the
 * client, so every egress address must pass for SPF to hold whichever one a message uses.
 */
export type EgressSpf =
  | { result: 'pass' }
  /** The first egress address that did not pass, and its result (fail, softfail, neutral, none, permerror). */
  | { result: 'fail'; ip: string; spfResult: string }
  | { result: 'temperror'; ip: string };

/** What receivers call the checking host when it is unknown (RFC 7208 section 7.3, %{r}). */
const CHECKING_HOST = 'unknown';

/** `sender` must be an address with an ASCII domain; `egress` must not be empty. */
export async function spfForEgress(sender: string, egress: readonly string[], resolver: DnsResolver): Promise<EgressSpf> {
  // One address after the other: the first fills the resolver's cache the others then read.
  for (const ip of egress) {
    const response = await checkSpf({ sender, ip, mta: CHECKING_HOST, resolver: resolver as DNSResolver });
    const result = response.status.result;
    if (result === 'pass') continue;
    if (result === 'temperror' || result === 'temperr') return { result: 'temperror', ip };
    return { result: 'fail', ip, spfResult: result };
  }
  return { result: 'pass' };
}
