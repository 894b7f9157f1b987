import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';

/**
 * CPU time and memory of the server under test, from Linux's /proc (proc(5)). CPU counts
 * utime + stime, in clock ticks converted with `getconf CLK_TCK`; memory is VmRSS.
 */

export interface CpuTimes {
  /** utime + stime of the process itself. */
  ownMs: number;
  /** cutime + cstime: children it has waited for. */
  childrenMs: number;
}

let ticksPerSecond: number | undefined;

/** Clock ticks per second (normally 100); /proc/PID/stat counts CPU time in them. */
export function clockTicksPerSecond(): number {
  if (ticksPerSecond === undefined) {
    try {
      ticksPerSecond = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      ticksPerSecond = 100;
    }
  }
  return ticksPerSecond;
}

/** Fields of /proc/PID/stat after the command name, which may itself hold spaces or ')'. */
function statFields(pid: number): string[] | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  return text.slice(text.lastIndexOf(')') + 2).split(' ');
}

/** CPU times of one process, or undefined once it has gone. */
export function cpuTimes(pid: number): CpuTimes | undefined {
  const fields = statFields(pid);
  if (!fields) return undefined;
  // proc(5) numbers the fields from 1 with pid and comm first; fields[0] here is field 3 (state).
  const tick = (field: number) => Number(fields[field - 3]);
  const toMs = 1000 / clockTicksPerSecond();
  return { ownMs: (tick(14) + tick(15)) * toMs, childrenMs: (tick(16) + tick(17)) * toMs };
}

/** Resident memory in bytes, or undefined once the process has gone. */
export function residentBytes(pid: number): number | undefined {
  try {
    const match = /^VmRSS:\s+(\d+)\s+kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match ? Number(match[1]) * 1024 : undefined;
  } catch {
    return undefined;
  }
}

/** Every live process whose /proc/PID/comm matches `pattern` in full. */
export function processesNamed(pattern: RegExp): Array<{ pid: number; name: string }> {
  const found: Array<{ pid: number; name: string }> = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let name: string;
    try {
      name = readFileSync(`/proc/${entry}/comm`, 'utf8').trim();
    } catch {
      continue;
    }
    if (pattern.test(name)) found.push({ pid: Number(entry), name });
  }
  return found;
}

/** The process (or group of processes) whose cost a scenario measures. */
export interface MeasuredServer {
  /** CPU milliseconds used so far, comparable between two calls. */
  cpuMs(): number;
  /** Resident bytes now. */
  rssBytes(): number;
}

/** One process by id: Postern. */
export function singleProcess(pid: number): MeasuredServer {
  return {
    cpuMs: () => {
      const times = cpuTimes(pid);
      return times ? times.ownMs + times.childrenMs : Number.NaN;
    },
    rssBytes: () => residentBytes(pid) ?? Number.NaN,
  };
}

/**
 * A server made of several processes, such as Postfix: every process whose name matches,
 * plus the children that `master` has already reaped (its cutime + cstime), so a short-lived
 * smtpd that exits mid-scenario still counts. A process alive at the first reading and gone
 * at the second counts correctly too: its total lands in master's children time. RSS is the
 * sum over the processes, which overstates a little, as shared pages count in each.
 */
export function processGroup(namePattern: string, reaperName = 'master'): MeasuredServer {
  const pattern = new RegExp(`^(?:${namePattern})$`);
  return {
    cpuMs() {
      let total = 0;
      for (const { pid, name } of processesNamed(pattern)) {
        const times = cpuTimes(pid);
        if (!times) continue;
        total += times.ownMs + (name === reaperName ? times.childrenMs : 0);
      }
      return total;
    },
    rssBytes() {
      let total = 0;
      for (const { pid } of processesNamed(pattern)) total += residentBytes(pid) ?? 0;
      return total;
    },
  };
}

/**
 * Samples RSS every `intervalMs` (100 ms) between start() and stop() and keeps the peak, so a
 * short spike between the scenario's start and end still shows.
 */
export class PeakRssSampler {
  private peak = 0;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly server: MeasuredServer,
    private readonly intervalMs = 100,
  ) {}

  start(): void {
    this.sample();
    this.timer = setInterval(() => this.sample(), this.intervalMs);
  }

  /** Stops sampling and returns the peak in bytes (NaN when nothing could be read). */
  stop(): number {
    clearInterval(this.timer);
    this.sample();
    return this.peak > 0 ? this.peak : Number.NaN;
  }

  private sample(): void {
    const rss = this.server.rssBytes();
    if (Number.isFinite(rss) && rss > this.peak) this.peak = rss;
  }
}
