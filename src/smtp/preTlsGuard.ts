import { isIPv6, type Socket } from 'node:net';
import { normalizeIPv6 } from 'smtp-server/lib/ipv6-normalize.js';

/**
 * Bounds what a client can do before TLS is up, on both listeners: how many such connections
 * one address may hold, and how long each may take to get to TLS.
 *
 * Without it, an implicit-TLS listener holds a raw socket through the whole handshake (up to
 * the idle timeout) before any per-address limit applies, so one address could fill every slot;
 * and on the STARTTLS listener a client could chat (NOOP, RSET, EHLO) without ever starting
 * TLS, since every command resets the idle timer.
 */
export class PreTlsGuard {
  private readonly pending = new Map<string, { socket: Socket; timer: NodeJS.Timeout }>();
  private readonly perAddress = new Map<string, number>();

  constructor(
    private readonly options: {
      maxPerAddress: number;
      deadlineMs: number;
      plaintext: boolean;
      /** Ends a connection that did not get to TLS in time (the listener knows how to, safely). */
      expire: (socket: Socket) => void;
      onRefused: (address: string, reason: 'too-many-from-address' | 'tls-deadline') => void;
    },
  ) {}

  /**
   * For each raw socket, before smtp-server sees it. False means the socket was refused and
   * destroyed, and must not be handed on.
   */
  admit(socket: Socket): boolean {
    const address = normalizeAddress(socket.remoteAddress);
    const key = keyOf(address, socket.remotePort);
    const count = this.perAddress.get(address) ?? 0;
    // On a plaintext listener the session-level limit answers 421 before any TLS, so only an
    // implicit-TLS listener needs a per-address cap on sockets still in their handshake.
    if (!this.options.plaintext && count >= this.options.maxPerAddress) {
      this.options.onRefused(address, 'too-many-from-address');
      socket.destroy();
      return false;
    }
    this.perAddress.set(address, count + 1);
    const timer = setTimeout(() => this.expire(key, address), this.options.deadlineMs);
    timer.unref();
    this.pending.set(key, { socket, timer });
    socket.once('close', () => this.release(key, address));
    return true;
  }

  /** TLS is up for the connection from this address and port (onSecure). */
  established(remoteAddress: string, remotePort: number): void {
    const address = normalizeAddress(remoteAddress);
    this.release(keyOf(address, remotePort), address);
  }

  private expire(key: string, address: string): void {
    const entry = this.pending.get(key);
    if (!entry) return;
    this.release(key, address);
    this.options.onRefused(address, 'tls-deadline');
    this.options.expire(entry.socket);
  }

  private release(key: string, address: string): void {
    const entry = this.pending.get(key);
    if (!entry) return;
    clearTimeout(entry.timer);
    this.pending.delete(key);
    const left = (this.perAddress.get(address) ?? 1) - 1;
    if (left > 0) this.perAddress.set(address, left);
    else this.perAddress.delete(address);
  }
}

function keyOf(address: string, port: number | undefined): string {
  return `${address}|${port ?? 0}`;
}

/** The same form smtp-server gives session.remoteAddress: IPv4-mapped IPv6 unwrapped, lower case. */
export function normalizeAddress(raw: string | undefined): string {
  const address = (raw ?? '').trim().replace(/^::ffff:/i, '').toLowerCase();
  return isIPv6(address) ? normalizeIPv6(address) : address;
}
