import { isIP } from 'node:net';

/** Where one DNS server listens. */
export interface DnsServerAddress {
  host: string;
  port: number;
  family: 4 | 6;
}

const DNS_PORT = 53;

/**
 * A server written the way node:dns `setServers` and `dns.getServers()` write them: an IP
 * ("192.0.2.1", "2001:db8::1"), an IPv4 address with a port ("127.0.0.1:5353") or a bracketed
 * IPv6 address with or without one ("[::1]:5353", "[::1]"). The port defaults to 53.
 */
export function parseServerAddress(server: string): DnsServerAddress {
  const invalid = () => new TypeError(`DNS server must be an IP address, optionally with a port ("127.0.0.1:5353", "[::1]:53"), got "${server}"`);
  const bare = isIP(server);
  if (bare !== 0) return { host: server, port: DNS_PORT, family: bare as 4 | 6 };

  const bracketed = /^\[([^\]]+)\](?::(\d{1,5}))?$/.exec(server);
  const withPort = bracketed ?? /^([^:]+):(\d{1,5})$/.exec(server);
  if (!withPort) throw invalid();
  const host = withPort[1] ?? '';
  const family = isIP(host);
  if (family === 0 || (bracketed !== null && family !== 6)) throw invalid();
  const port = withPort[2] === undefined ? DNS_PORT : Number(withPort[2]);
  if (port < 1 || port > 0xffff) throw invalid();
  return { host, port, family: family as 4 | 6 };
}

