import { pino, type Logger, type LevelWithSilent, type DestinationStream } from 'pino';

export type { Logger };

/**
 * Structured JSON logs (one object per line) on stdout. Secrets never reach a line: the
 * fields that could carry one are redacted here as a backstop, and callers never log them.
 */
export function createLogger(level: LevelWithSilent = 'info', destination?: DestinationStream): Logger {
  const options = {
    level,
    base: { service: 'postern' },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label: string) => ({ level: label }) },
    redact: {
      paths: ['password', 'pass', '*.password', '*.pass', 'auth.pass', '*.auth.pass'],
      censor: '[redacted]',
    },
  };
  return pino(options, destination ?? stdoutDestination());
}

/**
 * stdout, written asynchronously: a synchronous write per line makes every session wait on
 * the log reader (a container runtime, a pipe that is momentarily full). What is still
 * buffered when the process exits is written out synchronously then, so no line is lost.
 */
function stdoutDestination(): DestinationStream {
  const destination = pino.destination({ dest: 1, sync: false, minLength: 0 });
  process.once('exit', () => {
    try {
      destination.flushSync();
    } catch {
      // stdout is gone (closed pipe); nothing left to write to.
    }
  });
  return destination;
}

/** A logger that writes nothing; for tests and commands that must stay quiet. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
