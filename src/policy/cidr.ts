import ipaddr from 'ipaddr.js';

/**
 * Client address ranges in policy files (`when.clientCidrs`): IPv4 and IPv6 CIDR blocks
 * (RFC 4632, RFC 4291 section 2.3), or a single address meaning just that host.
 */

export type AddressRange = [ipaddr.IPv4 | ipaddr.IPv6, number];

/** Why `text` is not an address or CIDR block, or undefined when it is. */
export function cidrProblem(text: string): string | undefined {
  const slash = text.indexOf('/');
  const address = slash < 0 ? text : text.slice(0, slash);
  const prefix = slash < 0 ? undefined : text.slice(slash + 1);
  // ipaddr.IPv4.isValid also takes "10" and "0x0a.1" (inet_aton forms); a policy file should
  // say what it means, so IPv4 must be dotted quad.
  const isV4 = ipaddr.IPv4.isValidFourPartDecimal(address);
  if (!isV4 && !ipaddr.IPv6.isValid(address)) return 'is not an IPv4 or IPv6 address or CIDR block';
  if (prefix === undefined) return undefined;
  const max = isV4 ? 32 : 128;
  if (!/^\d{1,3}$/.test(prefix) || Number(prefix) > max) return `has a prefix length that is not 0 to ${max}`;
  const [network, bits] = ipaddr.parseCIDR(text);
  const base = networkAddress(network, bits);
  if (base.toString() !== network.toString()) {
    // Postfix warns the same way: "10.1.2.3/8" usually means someone forgot to change a part.
    return `has host bits set after the prefix; the block is ${base.toString()}/${bits}`;
  }
  return undefined;
}

/** Parses an address or CIDR block that cidrProblem accepted. */
export function parseRange(text: string): AddressRange {
  if (text.includes('/')) return ipaddr.parseCIDR(text);
  const address = ipaddr.parse(text);
  return [address, address.kind() === 'ipv4' ? 32 : 128];
}

/**
 * Whether the client `address` is in one of `ranges`. An IPv4-mapped IPv6 address
 * (::ffff:192.0.2.1, what a dual-stack socket reports for an IPv4 client) counts as the IPv4
 * address it carries. An unparseable address matches nothing.
 */
export function addressInRanges(ranges: readonly AddressRange[], address: string): boolean {
  let parsed: ipaddr.IPv4 | ipaddr.IPv6;
  try {
    parsed = ipaddr.process(address);
  } catch {
    return false;
  }
  return ranges.some(([network, bits]) => network.kind() === parsed.kind() && parsed.match(network, bits));
}

function networkAddress(address: ipaddr.IPv4 | ipaddr.IPv6, bits: number): ipaddr.IPv4 | ipaddr.IPv6 {
  const bytes = address.toByteArray();
  for (let i = 0; i < bytes.length; i++) {
    const keep = Math.max(0, Math.min(8, bits - i * 8));
    bytes[i] = bytes[i]! & ((0xff << (8 - keep)) & 0xff);
  }
  return ipaddr.fromByteArray(bytes);
}
