import ipaddr from 'ipaddr.js';
import { z } from 'zod';

/**
 * Lists of networks in CIDR notation (192.0.2.0/24, 2001:db8::/32) or single addresses,
 * IPv4 and IPv6. An IPv4-mapped IPv6 address (::ffff:192.0.2.1, RFC 4291 section 2.5.5.2),
 * which is how a dual-stack socket reports an IPv4 client, is treated as the IPv4 address it
 * carries, on both the list side and the client side.
 */

type Network = [ipaddr.IPv4 | ipaddr.IPv6, number];

const NOT_A_NETWORK = 'is not an IP address or a CIDR network (192.0.2.0/24, 2001:db8::/32)';

function parseNetwork(entry: string): Network | string {
  const text = entry.trim();
  const slash = text.indexOf('/');
  const address = slash < 0 ? text : text.slice(0, slash);
  const prefix = slash < 0 ? undefined : text.slice(slash + 1);
  // ipaddr.js also reads inet_aton forms ("10", "0x0a.1"); a policy says what it means, so
  // IPv4 must be a dotted quad.
  const isV4 = ipaddr.IPv4.isValidFourPartDecimal(address);
  if (!isV4 && !ipaddr.IPv6.isValid(address)) return `"${entry}" ${NOT_A_NETWORK}`;
  const maxBits = isV4 ? 32 : 128;
  if (prefix !== undefined && (!/^\d{1,3}$/.test(prefix) || Number(prefix) > maxBits)) return `"${entry}" ${NOT_A_NETWORK}`;
  const network: Network = prefix === undefined ? [ipaddr.parse(address), maxBits] : ipaddr.parseCIDR(text);
  const [base, bits] = network;
  if (prefix !== undefined) {
    const start = isV4 ? ipaddr.IPv4.networkAddressFromCIDR(text) : ipaddr.IPv6.networkAddressFromCIDR(text);
    // "10.1.2.3/8" usually means a part was left unchanged; Postfix warns about it too.
    if (start.toString() !== base.toString()) return `"${entry}" has host bits set after the prefix; the network is ${start.toString()}/${bits}`;
  }
  if (base.kind() === 'ipv6' && (base as ipaddr.IPv6).isIPv4MappedAddress() && bits >= 96) {
    return [(base as ipaddr.IPv6).toIPv4Address(), bits - 96];
  }
  return network;
}

/** Why `entry` is not a network or address, or undefined when it is (for load errors). */
export function networkProblem(entry: string): string | undefined {
  const network = parseNetwork(entry);
  return typeof network === 'string' ? network : undefined;
}

/** The client address as one comparable address, IPv4-mapped IPv6 unwrapped; undefined when it is not an IP address. */
export function parseClientAddress(address: string): ipaddr.IPv4 | ipaddr.IPv6 | undefined {
  try {
    return ipaddr.process(address);
  } catch {
    return undefined;
  }
}

export class CidrList {
  private readonly networks: readonly Network[];

  constructor(entries: readonly string[]) {
    this.networks = entries.map((entry) => {
      const network = parseNetwork(entry);
      if (typeof network === 'string') throw new RangeError(network);
      return network;
    });
  }

  contains(address: ipaddr.IPv4 | ipaddr.IPv6): boolean {
    // match() throws when the families differ; an IPv4 client is simply not in an IPv6 network.
    return this.networks.some(([network, bits]) => network.kind() === address.kind() && address.match(network, bits));
  }
}

/** A params field holding a list of networks, checked when the policy loads. */
export const cidrListSchema = z.array(z.string()).superRefine((entries, ctx) => {
  entries.forEach((entry, index) => {
    const network = parseNetwork(entry);
    if (typeof network === 'string') ctx.addIssue({ code: 'custom', path: [index], message: network });
  });
});
