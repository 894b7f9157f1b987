import { domainToASCII } from 'node:url';
import type { DeliveryConfig, RelayConfig } from '../config/schema.js';

/** Where mail for a domain goes next. */
export type NextHop =
  | { kind: 'relay'; name: string; relay: RelayConfig }
  | { kind: 'mx'; name: string; tls: 'opportunistic' | 'require'; verifyCertificate: boolean };

/**
 * Chooses the next hop for each recipient domain: the route naming the domain exactly, else
 * the route with the longest matching `*.` pattern, else delivery.mode. Routes are matched
 * on A-labels in lower case (domain names are case-insensitive, RFC 5321 section 2.4), so
 * an IDN recipient and its ASCII form go the same way.
 */
export class Router {
  private readonly exact = new Map<string, NextHop>();
  /** Suffixes (".example.com") with their hop, longest first. */
  private readonly wildcards: Array<{ suffix: string; hop: NextHop }> = [];
  private readonly fallback: NextHop;

  constructor(delivery: DeliveryConfig) {
    const mxDefault: NextHop = { kind: 'mx', name: 'mx', tls: delivery.mx.tls, verifyCertificate: delivery.mx.verifyCertificate };
    const smarthostHop: NextHop | undefined = delivery.smarthost && { kind: 'relay', name: 'smarthost', relay: delivery.smarthost };
    this.fallback = delivery.mode === 'smarthost' ? required(smarthostHop) : mxDefault;

    delivery.routes.forEach((route, index) => {
      const name = `route ${index + 1}`;
      const hop: NextHop =
        route.via === 'relay'
          ? { kind: 'relay', name, relay: required(route.relay) }
          : route.via === 'smarthost'
            ? required(smarthostHop)
            : {
                kind: 'mx',
                name: route.tls === undefined && route.verifyCertificate === undefined ? 'mx' : name,
                tls: route.tls ?? delivery.mx.tls,
                verifyCertificate: route.verifyCertificate ?? delivery.mx.verifyCertificate,
              };
      for (const pattern of route.domains) {
        // The first route naming a domain wins, as in a routing table read top to bottom.
        if (pattern.startsWith('*.')) {
          const suffix = `.${asciiDomain(pattern.slice(2))}`;
          if (!this.wildcards.some((w) => w.suffix === suffix)) this.wildcards.push({ suffix, hop });
        } else {
          const domain = asciiDomain(pattern);
          if (!this.exact.has(domain)) this.exact.set(domain, hop);
        }
      }
    });
    this.wildcards.sort((a, b) => b.suffix.length - a.suffix.length);
  }

  hopFor(domain: string): NextHop {
    const ascii = asciiDomain(domain);
    const exact = this.exact.get(ascii);
    if (exact) return exact;
    for (const { suffix, hop } of this.wildcards) if (ascii.endsWith(suffix)) return hop;
    return this.fallback;
  }

  /**
   * Recipients grouped into the transactions of one attempt: every recipient for one relay
   * in one transaction; for MX, one transaction per recipient domain (its own MX hosts).
   * Recipients keep their order within a group.
   */
  plan(recipients: readonly string[]): Array<{ hop: NextHop; domain: string; recipients: string[] }> {
    const groups = new Map<string, { hop: NextHop; domain: string; recipients: string[] }>();
    for (const recipient of recipients) {
      const domain = asciiDomain(domainOf(recipient));
      const hop = this.hopFor(domain);
      const key = hop.kind === 'relay' ? `relay\0${hop.name}` : `mx\0${hop.name}\0${domain}`;
      let group = groups.get(key);
      if (!group) {
        group = { hop, domain, recipients: [] };
        groups.set(key, group);
      }
      group.recipients.push(recipient);
    }
    return [...groups.values()];
  }
}

/** The domain part of an address (after the last @); an address literal keeps its brackets. */
export function domainOf(address: string): string {
  return address.slice(address.lastIndexOf('@') + 1);
}

/** Lower case, no trailing dot, A-labels for an IDN; an address literal is left as it is. */
export function asciiDomain(domain: string): string {
  const trimmed = domain.replace(/\.$/, '').toLowerCase();
  if (trimmed.startsWith('[')) return trimmed;
  return domainToASCII(trimmed) || trimmed;
}

function required<T>(value: T | undefined): T {
  // The schema refuses a configuration that names a hop it does not define.
  if (value === undefined) throw new Error('the configuration names a next hop it does not define');
  return value;
}
