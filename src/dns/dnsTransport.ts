import { createSocket } from 'node:dgram';
import { connect } from 'node:net';
import dnsPacket, { type DecodedPacket } from 'dns-packet';
import type { DnsServerAddress } from './serverAddress.js';

/**
 * One query, one answer, over UDP or TCP (RFC 1035 section 4.2). The transport only moves
 * packets; deciding what an answer means is the resolver's job.
 */

/** A response with its RCODE, which dns-packet decodes but does not declare. */
export interface DnsResponse {
  packet: DecodedPacket;
  /** The header's 4-bit RCODE (RFC 1035 section 4.1.1) plus the EDNS0 extended bits (RFC 6891 section 6.1.3). */
  rcode: number;
  truncated: boolean;
}

/** Why no answer came, in node:dns's codes. */
export class DnsTransportError extends Error {
  constructor(readonly code: 'ETIMEOUT' | 'ECONNREFUSED' | 'EBADRESP', message: string) {
    super(message);
    this.name = 'DnsTransportError';
  }
}

/** Decides whether a packet is the answer to the query sent (same id, same question). */
export type AnswerCheck = (response: DnsResponse) => boolean;

const MAX_TCP_MESSAGE = 0xffff;

function decodeResponse(message: Buffer): DnsResponse | undefined {
  try {
    const packet = dnsPacket.decode(message);
    if (!packet.flag_qr) return undefined;
    const opt = packet.additionals?.find((record) => record.type === 'OPT');
    const extended = opt !== undefined && 'extendedRcode' in opt ? opt.extendedRcode : 0;
    // RCODE is the low 4 bits of the header's second 16-bit word.
    const rcode = ((message[3] ?? 0) & 0x0f) | (extended << 4);
    return { packet, rcode, truncated: packet.flag_tc };
  } catch {
    return undefined;
  }
}

/**
 * Any socket failure (ICMP port unreachable, no route) is ECONNREFUSED, as node:dns (c-ares)
 * reports a server it could not reach.
 */
function unreachable(server: DnsServerAddress, error: Error): DnsTransportError {
  return new DnsTransportError('ECONNREFUSED', `cannot reach DNS server ${server.host}:${server.port}: ${error.message}`);
}

function timedOut(server: DnsServerAddress, timeoutMs: number): DnsTransportError {
  return new DnsTransportError('ETIMEOUT', `DNS server ${server.host}:${server.port} did not answer within ${timeoutMs} ms`);
}

/**
 * Sends `query` in one datagram from a fresh socket on an ephemeral port the system picks, so
 * each query has its own source port as well as its own id (RFC 5452 section 9.2). The socket
 * is connected: the kernel drops datagrams from any other address and reports ICMP errors.
 * Datagrams that do not decode or do not answer the query are dropped and the wait goes on: an
 * off-path forgery must not end the query (RFC 5452 section 9.1).
 */
export function exchangeOverUdp(server: DnsServerAddress, query: Buffer, isAnswer: AnswerCheck, timeoutMs: number): Promise<DnsResponse> {
  return new Promise((resolve, reject) => {
    const socket = createSocket(server.family === 6 ? 'udp6' : 'udp4');
    let settled = false;
    const settle = (finish: () => void) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.close();
      finish();
    };
    const timer = setTimeout(() => settle(() => reject(timedOut(server, timeoutMs))), timeoutMs);
    socket.on('error', (error) => settle(() => reject(unreachable(server, error))));
    socket.on('message', (message) => {
      const response = decodeResponse(message);
      if (response !== undefined && isAnswer(response)) settle(() => resolve(response));
    });
    socket.connect(server.port, server.host, () => {
      socket.send(query, (error) => {
        if (error) settle(() => reject(unreachable(server, error)));
      });
    });
  });
}

/**
 * Sends `query` over a new TCP connection with the two-octet length prefix (RFC 1035 section
 * 4.2.2), for answers too large for a datagram (RFC 7766). On TCP the peer is the server we
 * connected to, so a response that does not answer the query is a broken server: EBADRESP.
 */
export function exchangeOverTcp(server: DnsServerAddress, query: Buffer, isAnswer: AnswerCheck, timeoutMs: number): Promise<DnsResponse> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: server.host, port: server.port });
    let received = Buffer.alloc(0);
    let settled = false;
    const settle = (finish: () => void) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      finish();
    };
    const badResponse = (why: string) => new DnsTransportError('EBADRESP', `DNS server ${server.host}:${server.port} ${why}`);
    const timer = setTimeout(() => settle(() => reject(timedOut(server, timeoutMs))), timeoutMs);
    const prefix = Buffer.alloc(2);
    prefix.writeUInt16BE(query.length);
    socket.on('connect', () => socket.write(Buffer.concat([prefix, query])));
    socket.on('error', (error) => settle(() => reject(unreachable(server, error))));
    socket.on('data', (chunk: Buffer) => {
      received = Buffer.concat([received, chunk]);
      if (received.length > 2 + MAX_TCP_MESSAGE) return settle(() => reject(badResponse('sent more than one message over TCP')));
      if (received.length < 2) return;
      const length = received.readUInt16BE(0);
      if (received.length < 2 + length) return;
      const response = decodeResponse(received.subarray(2, 2 + length));
      if (response === undefined || !isAnswer(response)) return settle(() => reject(badResponse('sent a TCP response that does not answer the query')));
      settle(() => resolve(response));
    });
    socket.on('close', () => settle(() => reject(badResponse('closed the TCP connection before answering'))));
  });
}
