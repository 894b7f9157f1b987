import type { Answer, RecordType } from 'dns-packet';

/**
 * Decoded answer records turned into exactly what node:dns `resolver.resolve(name, rrtype)`
 * returns for the type, because every consumer (delivery's MX and MTA-STS lookups, mailauth's
 * SPF, DKIM and DMARC) was written against those shapes.
 */

/** The types `resolve` answers, as node:dns names them (ANY is left out: RFC 8482 retired it). */
export const SUPPORTED_TYPES = ['A', 'AAAA', 'CAA', 'CNAME', 'MX', 'NAPTR', 'NS', 'PTR', 'SOA', 'SRV', 'TXT'] as const satisfies readonly RecordType[];
export type SupportedType = (typeof SUPPORTED_TYPES)[number];

export function isSupportedType(rrtype: string): rrtype is SupportedType {
  return (SUPPORTED_TYPES as readonly string[]).includes(rrtype);
}

/** The name node:dns gives the query in its errors: "queryMx ENOTFOUND example.com". */
export function syscallFor(rrtype: SupportedType): string {
  return `query${rrtype.charAt(0)}${rrtype.slice(1).toLowerCase()}`;
}

/** Node writes names without the trailing dot, and the root (a null MX's exchange, RFC 7505) as "". */
function hostName(name: string): string {
  return name === '.' ? '' : name.replace(/\.$/, '');
}

/** A TXT character string as Node gives it: each octet one character (Latin-1), not UTF-8 decoded. */
function characterString(value: string | Buffer): string {
  return typeof value === 'string' ? value : value.toString('latin1');
}

function nodeRecord(rrtype: SupportedType, answer: Answer): unknown {
  switch (answer.type) {
    case 'A':
    case 'AAAA':
      return answer.data;
    case 'CNAME':
    case 'NS':
    case 'PTR':
      return hostName(answer.data);
    case 'MX':
      return { exchange: hostName(answer.data.exchange), priority: answer.data.preference ?? 0 };
    case 'TXT': {
      const strings = Array.isArray(answer.data) ? answer.data : [answer.data];
      return strings.map(characterString);
    }
    case 'SRV':
      return { name: hostName(answer.data.target), port: answer.data.port, priority: answer.data.priority ?? 0, weight: answer.data.weight ?? 0 };
    case 'SOA':
      return {
        nsname: hostName(answer.data.mname),
        hostmaster: hostName(answer.data.rname),
        serial: answer.data.serial ?? 0,
        refresh: answer.data.refresh ?? 0,
        retry: answer.data.retry ?? 0,
        expire: answer.data.expire ?? 0,
        minttl: answer.data.minimum ?? 0,
      };
    case 'CAA':
      return { critical: answer.data.flags ?? 0, [answer.data.tag]: answer.data.value };
    case 'NAPTR':
      return {
        flags: answer.data.flags,
        service: answer.data.services,
        regexp: answer.data.regexp,
        replacement: hostName(answer.data.replacement),
        order: answer.data.order,
        preference: answer.data.preference,
      };
    default:
      throw new TypeError(`a ${answer.type} record cannot answer a ${rrtype} query`);
  }
}

/**
 * The records of one RRset, all of type `rrtype`, in Node's shape: an array of records, except
 * SOA, which Node returns as the one record object.
 */
export function toNodeRecords(rrtype: SupportedType, answers: readonly Answer[]): unknown {
  const records = answers.map((answer) => nodeRecord(rrtype, answer));
  return rrtype === 'SOA' ? records[0] : records;
}
