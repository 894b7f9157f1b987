import { asciiDomain } from '../policy/match/addresses.js';
import { sameOrganizationalDomain } from './mailauthDkim.js';

/**
 * Which domain signs mail From a given domain. A receiver applying DMARC accepts a DKIM
 * signature whose d= is the From domain or, under relaxed alignment (the default, RFC 7489
 * section 3.1.1), any domain with the same organizational domain. So the From domain's own key
 * is used when there is one, else the key of its closest parent, so that one key for
 * example.com signs mail from news.example.com as well. A parent that is a public suffix
 * (co.uk) is never used: it shares no organizational domain with the From domain, and its
 * signature would not align.
 *
 * Returns undefined when no domain's key applies: the message goes unsigned.
 */
export function signingDomainFor(fromDomain: string, hasKey: (domain: string) => boolean): string | undefined {
  const from = asciiDomain(fromDomain);
  if (from === '' || from.startsWith('[')) return undefined; // an address literal has no DNS to publish a key in
  if (hasKey(from)) return from;
  for (let dot = from.indexOf('.'); dot >= 0; dot = from.indexOf('.', dot + 1)) {
    const parent = from.slice(dot + 1);
    if (!parent.includes('.')) break; // a top-level domain is never an organizational domain
    if (hasKey(parent) && sameOrganizationalDomain(from, parent)) return parent;
  }
  return undefined;
}
