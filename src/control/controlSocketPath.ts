import { join } from 'node:path';

/**
 * Where a gateway answers `postern queue` commands: inside the spool directory, which is
 * already private to the gateway's user (mode 0700) and which the CLI finds through the same
 * configuration file. One place, so the server and the client cannot disagree.
 */
export function controlSocketPath(spoolDir: string): string {
  return join(spoolDir, 'control.sock');
}
