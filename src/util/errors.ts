/**
 * The small catalogue of errors callers catch by code. Bad arguments use the built-in classes
 * (TypeError, RangeError); these are the failures a caller is expected to handle.
 */
export type PosternErrorCode =
  | 'CONFIG_INVALID'
  | 'USERS_FILE_INVALID'
  | 'TLS_MATERIAL_INVALID'
  | 'SPOOL_WRITE_FAILED'
  | 'SPOOL_CORRUPT'
  | 'LISTEN_FAILED'
  | 'MESSAGE_NOT_FOUND';

export class PosternError extends Error {
  constructor(
    readonly code: PosternErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'PosternError';
  }
}

export function isPosternError(err: unknown, code?: PosternErrorCode): err is PosternError {
  return err instanceof PosternError && (code === undefined || err.code === code);
}

/** The message of anything thrown, for log lines and error texts. */
export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
