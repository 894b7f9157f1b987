import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * `<spool>/postern.pid`: the process working on this spool. The control socket is how
 * commands reach a running gateway; this file is how they know one runs when the socket
 * cannot be reached (it could not be created, or was removed), so they never change a spool
 * under a live gateway's workers.
 */
export function gatewayPidPath(spoolDir: string): string {
  return join(spoolDir, 'postern.pid');
}

export function writeGatewayPid(spoolDir: string, pid: number = process.pid): void {
  writeFileSync(gatewayPidPath(spoolDir), `${pid}\n`, { mode: 0o600 });
}

export function removeGatewayPid(spoolDir: string, pid: number = process.pid): void {
  // Only our own: a second gateway refused at start must not remove the first one's file.
  if (readGatewayPid(spoolDir) === pid) rmSync(gatewayPidPath(spoolDir), { force: true });
}

export function readGatewayPid(spoolDir: string): number | undefined {
  try {
    const pid = Number.parseInt(readFileSync(gatewayPidPath(spoolDir), 'utf8').trim(), 10);
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

/** The pid of a gateway process still alive on this spool, other than `self`; undefined for none (or a stale file). */
export function liveGatewayPid(spoolDir: string, self: number = process.pid): number | undefined {
  const pid = readGatewayPid(spoolDir);
  if (pid === undefined || pid === self) return undefined;
  try {
    process.kill(pid, 0);
    return pid;
  } catch (err) {
    // EPERM: the process exists but belongs to someone else; still alive.
    return (err as NodeJS.ErrnoException).code === 'EPERM' ? pid : undefined;
  }
}
