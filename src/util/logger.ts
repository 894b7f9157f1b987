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
  return destination ? pino(options, destination) : pino(options);
}

/** A logger that writes nothing; for tests and commands that must stay quiet. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
