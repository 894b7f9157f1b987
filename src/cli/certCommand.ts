import { existsSync, readFileSync } from 'node:fs';
import { errorMessage, PosternError } from '../util/errors.js';
import { describeCertificate, type CertificateInfo } from '../tls/certificateInfo.js';
import { writeSelfSigned } from '../tls/selfSigned.js';

export interface GenerateCertificateOptions {
  /** `tls.cert` from the configuration (absolute). */
  certPath: string;
  /** `tls.key` from the configuration (absolute). */
  keyPath: string;
  /** `hostname` from the configuration. */
  hostname: string;
  /** Replace existing files. */
  force: boolean;
  /** Validity in days. */
  days: number;
  now?: Date;
}

/**
 * `postern cert generate`: writes a self-signed pair where the configuration expects it.
 * Existing material is never replaced without --force, since it may be a real certificate;
 * a running gateway picks the new pair up by itself (the files are watched).
 */
export async function generateCertificateCommand(opts: GenerateCertificateOptions): Promise<CertificateInfo> {
  if (!opts.force) {
    const existing = [opts.certPath, opts.keyPath].filter((path) => existsSync(path));
    if (existing.length > 0) {
      throw new PosternError(
        'TLS_MATERIAL_INVALID',
        `Refusing to overwrite existing TLS material: ${existing.join(' and ')} already ${existing.length > 1 ? 'exist' : 'exists'} ` +
          '(pass --force to replace it)',
      );
    }
  }
  return writeSelfSigned(opts.certPath, opts.keyPath, {
    hostname: opts.hostname,
    days: opts.days,
    ...(opts.now ? { now: opts.now } : {}),
  });
}

/** `postern cert show`: describes the configured certificate. */
export function showCertificateCommand(opts: { certPath: string }): CertificateInfo {
  let pem: Buffer;
  try {
    pem = readFileSync(opts.certPath);
  } catch (err) {
    const reason = (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'does not exist' : `could not be read (${errorMessage(err)})`;
    throw new PosternError('TLS_MATERIAL_INVALID', `Cannot read TLS certificate: ${opts.certPath} ${reason}`, { cause: err });
  }
  try {
    return describeCertificate(pem);
  } catch (err) {
    throw new PosternError(
      'TLS_MATERIAL_INVALID',
      `Cannot use TLS certificate: ${opts.certPath} is not a PEM certificate (${errorMessage(err)})`,
      { cause: err },
    );
  }
}

/** The lines both commands print. */
export function formatCertificateInfo(info: CertificateInfo): string {
  return [
    `subject:     ${info.subject}`,
    `names:       ${info.altNames.join(', ') || '(none)'}`,
    `valid from:  ${info.notBefore.toISOString()}`,
    `valid until: ${info.notAfter.toISOString()}`,
    `SHA-256:     ${info.fingerprint256}`,
  ].join('\n');
}
