import { readFileSync } from 'node:fs';
import { PosternError, errorMessage } from '../util/errors.js';

/** An extra CA certificate file (PEM) to trust, read once at start; `what` names its use in the error. */
export function readCaFile(path: string, what: string): Buffer {
  try {
    return readFileSync(path);
  } catch (err) {
    throw new PosternError('TLS_MATERIAL_INVALID', `Cannot read the ${what} CA file ${path}: ${errorMessage(err)}`, { cause: err });
  }
}
