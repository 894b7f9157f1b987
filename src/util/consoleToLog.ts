import { format } from 'node:util';
import type { Logger } from './logger.js';

/**
 * The gateway's stdout is its log: one JSON object per line, which collectors parse. A
 * library that prints with console.log would break that stream with a line of bare text (and
 * one does: mailauth's DKIM verifier prints a line for a signature whose l= exceeds the body,
 * which any client can send). In the gateway process, console.log, console.info and
 * console.debug become debug entries of the log instead; console.warn and console.error
 * already go to stderr and stay there.
 */
export function routeConsoleToLog(logger: Logger): void {
  const log = logger.child({ component: 'console' });
  const toLog = (...args: unknown[]) => log.debug({ text: format(...args) }, 'a library wrote to the console');
  console.log = toLog;
  console.info = toLog;
  console.debug = toLog;
}
