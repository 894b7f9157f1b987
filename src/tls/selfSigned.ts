import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { isIP } from 'node:net';
import forge from 'node-forge';
import { describeCertificate, type CertificateInfo } from './certificateInfo.js';
import { writeFileAtomic } from '../util/atomicFile.js';

export interface SelfSignedOptions {
  /** The gateway's host name: the subject CN and the first subject alternative name. */
  hostname: string;
  /** Validity in days from `now`; one year by default. */
  days?: number;
  /** The moment the certificate is issued; the current time by default. */
  now?: Date;
}

export interface SelfSignedPair {
  certPem: string;
  /** PKCS#8 PEM ("BEGIN PRIVATE KEY"). */
  keyPem: string;
}

const DEFAULT_DAYS = 365;
const DAY_MS = 86_400_000;
/**
 * notBefore is set a little in the past so a client whose clock runs slightly behind ours
 * does not reject a certificate generated a moment ago as "not yet valid".
 */
const CLOCK_SKEW_MS = 5 * 60_000;

/**
 * An RSA-2048, SHA-256 self-signed server certificate for `hostname`, localhost, 127.0.0.1
 * and ::1, so both the configured name and local tests verify against it.
 *
 * The key pair comes from node:crypto (OpenSSL) rather than forge.pki.rsa.generateKeyPair:
 * forge's pure-JavaScript generation takes seconds for 2048 bits and blocks the event loop,
 * while OpenSSL takes milliseconds. forge then builds and signs the certificate, which
 * node:crypto cannot do.
 */
export function generateSelfSigned(opts: SelfSignedOptions): SelfSignedPair {
  const days = opts.days ?? DEFAULT_DAYS;
  if (!Number.isInteger(days) || days < 1) {
    throw new RangeError(`Certificate validity must be a whole number of days of at least 1, got ${days}`);
  }
  if (opts.hostname.length === 0) throw new TypeError('A self-signed certificate needs a host name');
  const now = opts.now ?? new Date();

  const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const keyPem = privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
  const forgePrivate = forge.pki.privateKeyFromPem(keyPem);
  const forgePublic = forge.pki.publicKeyFromPem(publicKey.export({ type: 'spki', format: 'pem' }) as string);

  const cert = forge.pki.createCertificate();
  cert.publicKey = forgePublic;
  cert.serialNumber = randomSerialNumber();
  cert.validity.notBefore = new Date(now.getTime() - CLOCK_SKEW_MS);
  cert.validity.notAfter = new Date(now.getTime() + days * DAY_MS);
  const name = [
    { name: 'commonName', value: opts.hostname },
    { name: 'organizationName', value: 'Postern self-signed' },
  ];
  cert.setSubject(name);
  cert.setIssuer(name); // self-signed: the issuer is the subject
  cert.setExtensions([
    // RFC 5280 4.2.1.9: an end-entity certificate, not a CA.
    { name: 'basicConstraints', cA: false, critical: true },
    // RFC 5280 4.2.1.3: signatures (ECDHE suites) and key encipherment (RSA key exchange, TLS 1.2).
    { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
    // RFC 5280 4.2.1.12: id-kp-serverAuth only; this certificate never authenticates a client.
    { name: 'extKeyUsage', serverAuth: true },
    // RFC 6125 6.4.4: clients match names against the SANs, not the CN.
    { name: 'subjectAltName', altNames: subjectAltNames(opts.hostname) },
    { name: 'subjectKeyIdentifier' },
  ]);
  cert.sign(forgePrivate, forge.md.sha256.create());
  return { certPem: forge.pki.certificateToPem(cert), keyPem };
}

/**
 * Generates a pair and writes it: the key (0600) before the certificate (0644), each
 * atomically, so an interrupted run never leaves a certificate whose key is missing.
 * Existing files are replaced; refusing to overwrite is the caller's decision.
 */
export async function writeSelfSigned(certPath: string, keyPath: string, opts: SelfSignedOptions): Promise<CertificateInfo> {
  const { certPem, keyPem } = generateSelfSigned(opts);
  await writeFileAtomic(keyPath, keyPem, { mode: 0o600 });
  await writeFileAtomic(certPath, certPem, { mode: 0o644 });
  return describeCertificate(certPem);
}

/** forge's altName entries: type 2 is dNSName, type 7 is iPAddress (RFC 5280 4.2.1.6). */
function subjectAltNames(hostname: string): Array<{ type: 2; value: string } | { type: 7; ip: string }> {
  const dnsNames = new Set<string>();
  const ips = new Set<string>();
  for (const name of [hostname, 'localhost']) (isIP(name) ? ips : dnsNames).add(name.toLowerCase());
  for (const ip of ['127.0.0.1', '::1']) ips.add(ip);
  return [
    ...[...dnsNames].map((value) => ({ type: 2 as const, value })),
    ...[...ips].map((ip) => ({ type: 7 as const, ip })),
  ];
}

/**
 * RFC 5280 4.1.2.2: a positive integer of at most 20 octets, unpredictable (CA/Browser Forum
 * asks for at least 64 random bits). 16 random bytes with the top bit cleared keep it positive
 * in DER, and a set second-highest bit keeps the first octet non-zero, so the encoding is
 * minimal, as DER requires.
 */
function randomSerialNumber(): string {
  const bytes = randomBytes(16);
  bytes[0] = (bytes[0]! & 0x7f) | 0x40;
  return bytes.toString('hex');
}
