import { createSocket, type Socket as DgramSocket } from 'node:dgram';
import { createServer, type Server, type Socket } from 'node:net';
import dnsPacket, { type DecodedPacket, type Packet } from 'dns-packet';

/**
 * A DNS server on 127.0.0.1 (UDP and TCP on one port) whose answers a test writes packet by
 * packet: what no real server can be made to send on demand (forged ids, truncated answers,
 * FORMERR to EDNS0, chosen SOA fields). Real sockets, real packets.
 */

export type Transport = 'udp' | 'tcp';

/** Sends a packet (encoded by dns-packet, or raw bytes) back to the client that asked. */
export type Reply = (packet: Packet | Buffer) => void;

export type Responder = (query: DecodedPacket, reply: Reply, transport: Transport) => void;

export interface ScriptedDnsServer {
  /** "127.0.0.1:port", for the resolver's servers. */
  server: string;
  /** Every query received, in order, with the transport it came over. */
  queries: Array<{ packet: DecodedPacket; raw: Buffer; transport: Transport }>;
  close(): Promise<void>;
}

function encoded(packet: Packet | Buffer): Buffer {
  return Buffer.isBuffer(packet) ? packet : dnsPacket.encode(packet);
}

/** A response to `query` with the given records; the id and question are the query's unless overridden. */
export function responseTo(query: DecodedPacket, fields: Partial<Packet> & { rcode?: number } = {}): Buffer {
  const { rcode = 0, flags = 0, ...rest } = fields;
  const packet = encoded({ type: 'response', id: query.id, questions: query.questions, ...rest, flags: flags | dnsPacket.RECURSION_AVAILABLE });
  // dns-packet's encoder takes the RCODE only through the flags' low four bits.
  packet.writeUInt8((packet.readUInt8(3) & 0xf0) | (rcode & 0x0f), 3);
  return packet;
}

const BIND_ATTEMPTS = 5;

/** A UDP socket on a port the system picks and a TCP server on the same port; tried again if that TCP port is taken. */
async function bindUdpAndTcp(handleConnection: (socket: Socket) => void): Promise<{ udp: DgramSocket; tcp: Server; port: number }> {
  let lastError: unknown;
  for (let attempt = 0; attempt < BIND_ATTEMPTS; attempt++) {
    const udp = createSocket('udp4');
    await new Promise<void>((resolve, reject) => {
      udp.once('error', reject);
      udp.bind(0, '127.0.0.1', () => resolve());
    });
    const { port } = udp.address();
    const tcp = createServer(handleConnection);
    try {
      await new Promise<void>((resolve, reject) => {
        tcp.once('error', reject);
        tcp.listen(port, '127.0.0.1', () => resolve());
      });
      return { udp, tcp, port };
    } catch (error) {
      lastError = error;
      udp.close();
    }
  }
  throw new Error(`scripted DNS server found no port free for both UDP and TCP: ${(lastError as Error).message}`);
}

export async function startScriptedDnsServer(respond: Responder): Promise<ScriptedDnsServer> {
  const queries: ScriptedDnsServer['queries'] = [];
  const connections = new Set<Socket>();
  const { udp, tcp, port } = await bindUdpAndTcp((socket) => {
    connections.add(socket);
    socket.on('close', () => connections.delete(socket));
    socket.on('error', () => undefined);
    let received = Buffer.alloc(0);
    socket.on('data', (chunk: Buffer) => {
      received = Buffer.concat([received, chunk]);
      while (received.length >= 2 && received.length >= 2 + received.readUInt16BE(0)) {
        const raw = received.subarray(2, 2 + received.readUInt16BE(0));
        received = received.subarray(2 + raw.length);
        const packet = dnsPacket.decode(raw);
        queries.push({ packet, raw, transport: 'tcp' });
        respond(
          packet,
          (answer) => {
            const body = encoded(answer);
            const prefix = Buffer.alloc(2);
            prefix.writeUInt16BE(body.length);
            socket.write(Buffer.concat([prefix, body]));
          },
          'tcp',
        );
      }
    });
  });
  udp.on('message', (raw, peer) => {
    const packet = dnsPacket.decode(raw);
    queries.push({ packet, raw, transport: 'udp' });
    respond(packet, (answer) => udp.send(encoded(answer), peer.port, peer.address), 'udp');
  });

  return {
    server: `127.0.0.1:${port}`,
    queries,
    close: async () => {
      for (const socket of connections) socket.destroy();
      await Promise.all([new Promise<void>((resolve) => udp.close(() => resolve())), new Promise<void>((resolve) => tcp.close(() => resolve()))]);
    },
  };
}
