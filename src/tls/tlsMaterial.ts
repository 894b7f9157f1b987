import { createPrivateKey, X509Certificate, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createSecureContext } from 'node:tls';
import { errorMessage, PosternError } from '../util/errors.js';
import { describeCertificate, type CertificateInfo } from './certificateInfo.js';

/** The PEM bytes a TLS server is configured with: `tls.createSecureContext({ key, cert })`. */
export interface TlsMaterial {
  readonly key: Buffer;
  readonly cert: Buffer;
}

export interface LoadedTlsMaterial {
  material: TlsMaterial;
  info: CertificateInfo;
}

/**
 * Reads and validates a certificate (chain) and its key. Throws
 * PosternError('TLS_MATERIAL_INVALID') naming the file when either cannot be read or used, so
 * a bad pair is refused at start and, on a reload, never replaces a working one.
 *
 * Synchronous on purpose: the two files are read back to back, which narrows the window in
 * which a rotation could land between them (that case is caught by the key check below, and
 * the file watcher reports the rotation's second half as another change).
 */
export function readTlsMaterial(certPath: string, keyPath: string): LoadedTlsMaterial {
  const cert = readPem(certPath, 'certificate');
  const key = readPem(keyPath, 'key');
  const info = validateTlsMaterial({ cert, key }, certPath, keyPath);
  return { material: Object.freeze({ cert, key }), info };
}

/** Checks that `cert` parses, `key` parses and belongs to it, and that OpenSSL accepts the pair. */
export function validateTlsMaterial(material: TlsMaterial, certPath: string, keyPath: string): CertificateInfo {
  let x509: X509Certificate;
  let info: CertificateInfo;
  try {
    x509 = new X509Certificate(material.cert);
    info = describeCertificate(material.cert);
  } catch (err) {
    throw invalid(`Cannot use TLS certificate: ${certPath} is not a PEM certificate (${errorMessage(err)})`, err);
  }
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey(material.key);
  } catch (err) {
    // The OpenSSL message never contains key material, only what failed to decode.
    throw invalid(`Cannot use TLS key: ${keyPath} is not an unencrypted PEM private key (${errorMessage(err)})`, err);
  }
  if (!x509.checkPrivateKey(privateKey)) {
    throw invalid(`TLS key ${keyPath} does not match the certificate ${certPath} (${info.subject}, ${info.fingerprint256})`);
  }
  try {
    // What the listeners will do with the pair; fails here, at load, rather than inside a
    // connection handler (e.g. a key OpenSSL's security level refuses as too weak).
    createSecureContext({ key: material.key, cert: material.cert });
  } catch (err) {
    throw invalid(`Cannot use TLS certificate ${certPath} with key ${keyPath}: ${errorMessage(err)}`, err);
  }
  return info;
}

function readPem(path: string, what: 'certificate' | 'key'): Buffer {
  try {
    return readFileSync(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const reason =
      code === 'ENOENT' ? 'does not exist' : code === 'EACCES' ? 'is not readable (permission denied)' : `could not be read (${errorMessage(err)})`;
    throw invalid(`Cannot read TLS ${what}: ${path} ${reason}`, err);
  }
}

function invalid(message: string, cause?: unknown): PosternError {
  return new PosternError('TLS_MATERIAL_INVALID', message, cause === undefined ? undefined : { cause });
}
