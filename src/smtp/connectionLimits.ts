/**
 * Open sessions counted overall and per client address, across all listeners, so one client
 * (or a flood) cannot take every slot. A session is admitted once and released once.
 */
export type Admission = 'admitted' | 'too-many' | 'too-many-from-address';

export class ConnectionLimits {
  private total = 0;
  private readonly perAddress = new Map<string, number>();
  private readonly admitted = new Map<string, string>();

  constructor(private readonly limits: { maxConnections: number; maxConnectionsPerIp: number }) {}

  admit(sessionId: string, address: string): Admission {
    if (this.total >= this.limits.maxConnections) return 'too-many';
    const fromAddress = this.perAddress.get(address) ?? 0;
    if (fromAddress >= this.limits.maxConnectionsPerIp) return 'too-many-from-address';
    this.total += 1;
    this.perAddress.set(address, fromAddress + 1);
    this.admitted.set(sessionId, address);
    return 'admitted';
  }

  /** Safe to call for a session that was refused or already released. */
  release(sessionId: string): void {
    const address = this.admitted.get(sessionId);
    if (address === undefined) return;
    this.admitted.delete(sessionId);
    this.total -= 1;
    const left = (this.perAddress.get(address) ?? 1) - 1;
    if (left > 0) this.perAddress.set(address, left);
    else this.perAddress.delete(address);
  }

  get active(): number {
    return this.total;
  }
}
