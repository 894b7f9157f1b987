import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { isIP } from 'node:net';
import forge from 'node-forge';

/**
 * A throw-away certificate authority for tests that need certificate verification to pass
 * (or fail) for real: MTA-STS policy hosts, MX hosts speaking STARTTLS. Clients trust `caPem`;
 * servers present what `issue` returns.
 */
export interface TestCa {
  caPem: string;
  /** A server certificate for `hostnames` (DNS names or IP addresses), signed by this CA. */
  issue(hostnames: string[]): { certPem: string; keyPem: string };
}

const DAY_MS = 86_400_000;
/** Certificates are checked against the real time, whatever clock a test injects elsewhere. */
const VALIDITY_DAYS = 30;
const CLOCK_SKEW_MS = 5 * 60_000;

export function createTestCa(commonName = 'Postern Test CA'): TestCa {
  const caKeys = rsaKeyPair();
  const caCert = forge.pki.createCertificate();
  caCert.publicKey = caKeys.publicKey;
  setSerialAndValidity(caCert);
  const caName = [{ name: 'commonName', value: commonName }];
  caCert.setSubject(caName);
  caCert.setIssuer(caName);
  caCert.setExtensions([
    { name: 'basicConstraints', cA: true, critical: true },
    { name: 'keyUsage', keyCertSign: true, cRLSign: true, critical: true },
    { name: 'subjectKeyIdentifier' },
  ]);
  caCert.sign(caKeys.privateKey, forge.md.sha256.create());
  const caKeyIdentifier = caCert.generateSubjectKeyIdentifier().getBytes();

  return {
    caPem: forge.pki.certificateToPem(caCert),
    issue(hostnames) {
      if (hostnames.length === 0) throw new TypeError('A test certificate needs at least one host name');
      const keys = rsaKeyPair();
      const cert = forge.pki.createCertificate();
      cert.publicKey = keys.publicKey;
      setSerialAndValidity(cert);
      cert.setSubject([{ name: 'commonName', value: hostnames[0]! }]);
      cert.setIssuer(caCert.subject.attributes);
      cert.setExtensions([
        { name: 'basicConstraints', cA: false, critical: true },
        { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
        { name: 'extKeyUsage', serverAuth: true },
        {
          name: 'subjectAltName',
          altNames: hostnames.map((name) => (isIP(name) ? { type: 7, ip: name } : { type: 2, value: name })),
        },
        { name: 'subjectKeyIdentifier' },
        { name: 'authorityKeyIdentifier', keyIdentifier: caKeyIdentifier },
      ]);
      cert.sign(caKeys.privateKey, forge.md.sha256.create());
      return { certPem: forge.pki.certificateToPem(cert), keyPem: keys.keyPem };
    },
  };
}

/** OpenSSL makes the keys (milliseconds); forge's own RSA generation would take seconds. */
function rsaKeyPair(): { publicKey: forge.pki.rsa.PublicKey; privateKey: forge.pki.rsa.PrivateKey; keyPem: string } {
  const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const keyPem = privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
  return {
    publicKey: forge.pki.publicKeyFromPem(publicKey.export({ type: 'spki', format: 'pem' }) as string),
    privateKey: forge.pki.privateKeyFromPem(keyPem),
    keyPem,
  };
}

function setSerialAndValidity(cert: forge.pki.Certificate): void {
  const bytes = randomBytes(16);
  bytes[0] = (bytes[0]! & 0x7f) | 0x40; // positive and minimally encoded (RFC 5280 4.1.2.2)
  cert.serialNumber = bytes.toString('hex');
  const now = Date.now();
  cert.validity.notBefore = new Date(now - CLOCK_SKEW_MS);
  cert.validity.notAfter = new Date(now + VALIDITY_DAYS * DAY_MS);
}
