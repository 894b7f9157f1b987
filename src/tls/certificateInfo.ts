import { X509Certificate } from 'node:crypto';
import { isIPv6 } from 'node:net';

/** What an operator (and a log line, a metric, `postern cert show`) needs to know about a certificate. */
export interface CertificateInfo {
  /** SHA-256 of the DER certificate, colon-separated hex, as `openssl x509 -fingerprint -sha256` prints it. */
  fingerprint256: string;
  /** Distinguished name on one line, e.g. "CN=relay.example.com". */
  subject: string;
  /** Subject alternative names as "DNS:relay.example.com", "IP:127.0.0.1", "IP:::1". */
  altNames: string[];
  notBefore: Date;
  notAfter: Date;
}

/**
 * Describes the first certificate of a PEM (or DER) input, which for a chain file is the
 * server's own certificate. Throws whatever node:crypto throws for input that is not a
 * certificate; callers wrap that with the path they read.
 */
export function describeCertificate(certPem: string | Buffer): CertificateInfo {
  const x509 = new X509Certificate(certPem);
  return {
    fingerprint256: x509.fingerprint256,
    subject: x509.subject.split('\n').join(', '),
    altNames: parseAltNames(x509.subjectAltName),
    notBefore: new Date(x509.validFrom),
    notAfter: new Date(x509.validTo),
  };
}

/**
 * Node prints subjectAltName as `DNS:a, IP Address:0:0:0:0:0:0:0:1`, quoting an entry as a
 * JSON string when its value holds a character (such as a comma) that would make the list
 * ambiguous. Split on the separators outside quotes, unquote, and shorten the labels.
 */
function parseAltNames(text: string | undefined): string[] {
  if (!text) return [];
  const names: string[] = [];
  const entry = /([^:,]+):("(?:[^"\\]|\\.)*"|[^,]*)(?:,\s*|$)/gy;
  let match: RegExpExecArray | null;
  while (entry.lastIndex < text.length && (match = entry.exec(text)) !== null) {
    const label = match[1]!.trim();
    const raw = match[2]!;
    const value = raw.startsWith('"') ? (JSON.parse(raw) as string) : raw;
    names.push(label === 'IP Address' ? `IP:${canonicalIp(value)}` : `${label}:${value}`);
  }
  return names;
}

/** Node writes IPv6 addresses uncompressed ("0:0:0:0:0:0:0:1"); RFC 5952 form ("::1") reads better. */
function canonicalIp(address: string): string {
  if (!isIPv6(address)) return address;
  return new URL(`http://[${address}]`).hostname.slice(1, -1);
}
