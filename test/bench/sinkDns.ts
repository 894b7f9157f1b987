import { startDnsServer, type DnsServer } from '../helpers/dnsServer.js';

/**
 * The DNS the MX scenario's Postern asks: dnsmasq on loopback (test/helpers/dnsServer.ts)
 * publishing one MX for the recipients' domain, a host on 127.0.0.1 where the sink listens.
 * Every other name under the domain (the MTA-STS TXT record, _mta-sts.DOMAIN) is NXDOMAIN,
 * so a delivery makes the lookups a real one makes, and no more.
 */
export function startSinkDns(recipientDomain: string): Promise<DnsServer> {
  const exchange = `mx.${recipientDomain}`;
  return startDnsServer({
    zone: recipientDomain,
    mx: { [recipientDomain]: [{ preference: 10, exchange }] },
    hosts: { [exchange]: ['127.0.0.1'] },
  });
}
