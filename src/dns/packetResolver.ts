import { randomInt } from 'node:crypto';
import { getServers } from 'node:dns';
import dnsPacket, { type Answer, type StringAnswer } from 'dns-packet';
import { DnsTransportError, exchangeOverTcp, exchangeOverUdp, type AnswerCheck, type DnsResponse } from './dnsTransport.js';
import { isSupportedType, syscallFor, toNodeRecords, type SupportedType } from './nodeRecordShapes.js';
import { parseServerAddress, type DnsServerAddress } from './serverAddress.js';

/**
 * A stub resolver that speaks DNS itself (dns-packet over node:dgram and node:net) instead of
 * going through node:dns, because node:dns hides the TTL of every record type but A and AAAA:
 * a cache that honours what the domain's owner published needs the answer packets.
 *
 * It answers in node:dns's shapes and error codes (see nodeRecordShapes.ts), plus how long the
 * answer may be kept: the positive TTL of the records, or for "no such name" and "no such
 * record" the negative TTL the zone's SOA gives (RFC 2308 section 5).
 */

/** Records in node:dns's shape for the type, and how long they may be cached. */
export interface DnsAnswer {
  records: unknown;
  ttlSeconds: number;
}

export type TtlResolver = (name: string, rrtype: string) => Promise<DnsAnswer>;

/**
 * A failed lookup as node:dns reports it: message "queryMx ENOTFOUND example.com", `code`,
 * `syscall` and `hostname`. For ENOTFOUND and ENODATA, `negativeTtlSeconds` is how long the
 * answer may be cached, when the server sent the zone's SOA with it.
 */
export class DnsLookupError extends Error {
  constructor(
    readonly code: string,
    readonly syscall: string,
    readonly hostname: string,
    readonly negativeTtlSeconds?: number,
  ) {
    super(`${syscall} ${code} ${hostname}`);
  }
}

export interface PacketResolverOptions {
  /** Servers as node:dns writes them ("192.0.2.1", "127.0.0.1:5353", "[::1]:53"); default the system's. */
  servers?: readonly string[];
  /** How long to wait for each attempt's answer. */
  timeoutMs?: number;
  /** How many times each server is asked before giving up. */
  tries?: number;
}

const DEFAULT_TIMEOUT_MS = 5000;
const DEFAULT_TRIES = 2;
/**
 * The EDNS0 UDP payload size DNS Flag Day 2020 settled on: answers up to it fit an unfragmented
 * datagram on almost any path; larger ones come back truncated and are asked again over TCP.
 */
export const EDNS_UDP_PAYLOAD_SIZE = 1232;
/** Longer CNAME chains than this are treated as a loop. */
const MAX_CNAME_HOPS = 16;

const RCODE = { NOERROR: 0, FORMERR: 1, SERVFAIL: 2, NXDOMAIN: 3, NOTIMP: 4, REFUSED: 5 } as const;

/** c-ares's codes for an RCODE that is a server's failure: the next server may do better. */
function failureCode(rcode: number): string {
  switch (rcode) {
    case RCODE.FORMERR:
      return 'EFORMERR';
    case RCODE.SERVFAIL:
      return 'ESERVFAIL';
    case RCODE.NOTIMP:
      return 'ENOTIMP';
    case RCODE.REFUSED:
      return 'EREFUSED';
    default:
      return 'EBADRESP';
  }
}

/** Names compare without regard to ASCII case (RFC 4343) or a trailing dot. */
function canonicalName(name: string): string {
  return name.toLowerCase().replace(/\.$/, '');
}

/**
 * The name as it goes into the question, or undefined when it cannot be one: empty labels,
 * labels over 63 octets or names over 253 (RFC 1035 section 2.3.4), control characters.
 */
function questionName(name: string): string | undefined {
  const withoutRoot = name.endsWith('.') ? name.slice(0, -1) : name;
  if (withoutRoot === '' || Buffer.byteLength(withoutRoot) > 253 || /[\x00-\x20\x7f]/.test(withoutRoot)) return undefined;
  const labels = withoutRoot.split('.');
  if (labels.some((label) => label === '' || Buffer.byteLength(label) > 63)) return undefined;
  return withoutRoot;
}

function encodeQuery(id: number, name: string, rrtype: SupportedType, edns: boolean): Buffer {
  return dnsPacket.encode({
    type: 'query',
    id,
    flags: dnsPacket.RECURSION_DESIRED,
    questions: [{ name, type: rrtype, class: 'IN' }],
    // RFC 6891 section 6.1: the OPT pseudo-record offers the larger UDP payload.
    additionals: edns ? [{ type: 'OPT', name: '.', udpPayloadSize: EDNS_UDP_PAYLOAD_SIZE, extendedRcode: 0, ednsVersion: 0, flags: 0, flag_do: false, options: [] }] : [],
  });
}

/** An answer is the response carrying our id and repeating our question (RFC 5452 section 4.3). */
function answersQuery(id: number, name: string, rrtype: SupportedType): AnswerCheck {
  const asked = canonicalName(name);
  return ({ packet }) => {
    const question = packet.questions?.[0];
    return (
      packet.id === id &&
      packet.questions?.length === 1 &&
      question !== undefined &&
      question.type === rrtype &&
      (question.class ?? 'IN') === 'IN' &&
      canonicalName(question.name) === asked
    );
  };
}

function ttlOf(record: Answer): number {
  return 'ttl' in record ? (record.ttl ?? 0) : 0;
}

/**
 * The records answering `name`: those of the asked type at the name, or at the end of the
 * CNAME chain starting there that the server put in the same answer (RFC 1034 section 4.3.2).
 * Records for names off the chain are ignored. The TTL is the lowest along the chain: the
 * answer is only as good as its weakest link.
 */
function followChain(answers: readonly Answer[], name: string, rrtype: SupportedType): { records: Answer[]; ttlSeconds: number } {
  let current = canonicalName(name);
  let ttlSeconds = Number.POSITIVE_INFINITY;
  const visited = new Set<string>([current]);
  for (let hop = 0; hop <= MAX_CNAME_HOPS; hop++) {
    const records = answers.filter((record) => record.type === rrtype && canonicalName(record.name) === current);
    if (records.length > 0) return { records, ttlSeconds: Math.min(ttlSeconds, ...records.map(ttlOf)) };
    if (rrtype === 'CNAME') break;
    const alias = answers.find((record): record is StringAnswer => record.type === 'CNAME' && canonicalName(record.name) === current);
    if (alias === undefined) break;
    ttlSeconds = Math.min(ttlSeconds, ttlOf(alias));
    current = canonicalName(alias.data);
    if (visited.has(current)) break;
    visited.add(current);
  }
  return { records: [], ttlSeconds };
}

/**
 * How long "no such name / no such record" may be believed: the lower of the SOA record's own
 * TTL and its MINIMUM field, from the authority section (RFC 2308 sections 3 and 5). Without
 * an SOA the server said nothing, and the cache picks its default.
 */
function negativeTtl(response: DnsResponse, chainTtlSeconds: number): number | undefined {
  const soa = response.packet.authorities?.find((record): record is Extract<Answer, { type: 'SOA' }> => record.type === 'SOA');
  if (soa === undefined) return undefined;
  return Math.min(ttlOf(soa), soa.data.minimum ?? 0, chainTtlSeconds);
}

type Outcome = { kind: 'answer'; answer: DnsAnswer } | { kind: 'negative'; code: 'ENOTFOUND' | 'ENODATA'; ttlSeconds: number | undefined } | { kind: 'server-failure'; code: string };

/** What one server's response says about the question. */
function interpret(response: DnsResponse, name: string, rrtype: SupportedType): Outcome {
  const { rcode } = response;
  if (rcode !== RCODE.NOERROR && rcode !== RCODE.NXDOMAIN) return { kind: 'server-failure', code: failureCode(rcode) };
  const chain = followChain(response.packet.answers ?? [], name, rrtype);
  // After a CNAME chain the RCODE speaks of the chain's last name (RFC 6604 section 3).
  if (rcode === RCODE.NXDOMAIN) return { kind: 'negative', code: 'ENOTFOUND', ttlSeconds: negativeTtl(response, chain.ttlSeconds) };
  if (chain.records.length === 0) return { kind: 'negative', code: 'ENODATA', ttlSeconds: negativeTtl(response, chain.ttlSeconds) };
  return { kind: 'answer', answer: { records: toNodeRecords(rrtype, chain.records), ttlSeconds: chain.ttlSeconds } };
}

/** The system's servers, as node:dns read them from resolv.conf; c-ares's own fallback when there are none. */
function systemServers(): string[] {
  const servers = getServers();
  return servers.length > 0 ? servers : ['127.0.0.1'];
}

/**
 * A resolver asking `servers` in order, each up to `tries` times, `timeoutMs` per attempt.
 * A server that times out, cannot be reached or answers SERVFAIL, REFUSED or NOTIMP is skipped
 * for the next, as node:dns does; if none answers, the last failure is reported.
 */
export function createPacketResolver(options: PacketResolverOptions = {}): TtlResolver {
  const servers: DnsServerAddress[] = (options.servers && options.servers.length > 0 ? [...options.servers] : systemServers()).map(parseServerAddress);
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const tries = options.tries ?? DEFAULT_TRIES;
  if (!Number.isInteger(timeoutMs) || timeoutMs < 1) throw new RangeError(`DNS timeoutMs must be a positive integer, got ${timeoutMs}`);
  if (!Number.isInteger(tries) || tries < 1) throw new RangeError(`DNS tries must be a positive integer, got ${tries}`);

  /** One attempt: UDP, then TCP if the answer was truncated (RFC 7766 section 5). */
  async function exchange(server: DnsServerAddress, name: string, rrtype: SupportedType, edns: boolean): Promise<DnsResponse> {
    const id = randomInt(0, 0x10000);
    const query = encodeQuery(id, name, rrtype, edns);
    const isAnswer = answersQuery(id, name, rrtype);
    const response = await exchangeOverUdp(server, query, isAnswer, timeoutMs);
    return response.truncated ? exchangeOverTcp(server, query, isAnswer, timeoutMs) : response;
  }

  async function ask(server: DnsServerAddress, name: string, rrtype: SupportedType): Promise<DnsResponse> {
    const response = await exchange(server, name, rrtype, true);
    // A server that does not know EDNS0 answers FORMERR; ask it again without (RFC 6891 section 7).
    return response.rcode === RCODE.FORMERR ? exchange(server, name, rrtype, false) : response;
  }

  return async (name, rrtype) => {
    const type = rrtype.toUpperCase();
    if (!isSupportedType(type)) {
      throw Object.assign(new TypeError(`The DNS record type "${rrtype}" is not supported`), { code: 'ERR_INVALID_ARG_VALUE' });
    }
    const syscall = syscallFor(type);
    const asked = questionName(name);
    if (asked === undefined) throw new DnsLookupError('EBADNAME', syscall, name);

    let lastFailure = new DnsLookupError('ECONNREFUSED', syscall, name);
    for (let attempt = 0; attempt < tries; attempt++) {
      for (const server of servers) {
        let response: DnsResponse;
        try {
          response = await ask(server, asked, type);
        } catch (error) {
          if (!(error instanceof DnsTransportError)) throw error;
          lastFailure = new DnsLookupError(error.code, syscall, name);
          continue;
        }
        const outcome = interpret(response, asked, type);
        if (outcome.kind === 'answer') return outcome.answer;
        if (outcome.kind === 'negative') throw new DnsLookupError(outcome.code, syscall, name, outcome.ttlSeconds);
        lastFailure = new DnsLookupError(outcome.code, syscall, name);
      }
    }
    throw lastFailure;
  };
}
