import { createPrivateKey, createPublicKey } from 'node:crypto';
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  dkimRecordText,
  parseDkimRecord,
  publicKeyDnsValue,
  publishedKeyMatches,
  splitTxtStrings,
  zoneFileLine,
} from '../../../src/dkim/dnsRecord.js';
import { newKeyPem } from '../../helpers/dkimFixtures.js';

const rsaPublic = createPublicKey(createPrivateKey(newKeyPem('rsa')));
const edPublic = createPublicKey(createPrivateKey(newKeyPem('ed25519')));

describe('the public key in a DKIM record', () => {
  test('an RSA key is published as its DER SubjectPublicKeyInfo in base64', () => {
    const value = publicKeyDnsValue(rsaPublic);
    assert.deepEqual(Buffer.from(value, 'base64'), rsaPublic.export({ type: 'spki', format: 'der' }));
  });

  test('an Ed25519 key is published as its raw 32 bytes, as RFC 8463 says', () => {
    const raw = Buffer.from(publicKeyDnsValue(edPublic), 'base64');
    assert.equal(raw.length, 32);
    assert.deepEqual(raw, (edPublic.export({ type: 'spki', format: 'der' }) as Buffer).subarray(-32));
  });

  test('the record names its key type', () => {
    assert.equal(dkimRecordText('ed25519', 'abc'), 'v=DKIM1; k=ed25519; p=abc');
  });
});

describe('splitting a record into TXT strings', () => {
  test('a 2048-bit RSA record is split into strings of at most 255 characters that join back to it', () => {
    const text = dkimRecordText('rsa', publicKeyDnsValue(rsaPublic));
    const strings = splitTxtStrings(text);
    assert.ok(text.length > 255);
    assert.ok(strings.length >= 2);
    for (const s of strings) assert.ok(s.length <= 255);
    assert.equal(strings.join(''), text);
  });

  test('a short record stays one string', () => {
    assert.deepEqual(splitTxtStrings('v=DKIM1; p=abc'), ['v=DKIM1; p=abc']);
  });

  test('the zone file line names SELECTOR._domainkey.DOMAIN with a final dot and quotes each string', () => {
    const line = zoneFileLine('s1', 'example.com', `v=DKIM1; k=rsa; p=${'A'.repeat(300)}`);
    assert.match(line, /^s1\._domainkey\.example\.com\. IN TXT \( "v=DKIM1; k=rsa; p=A+" "A+" \)$/);
  });
});

describe('reading a published record', () => {
  test('a record without k= is an RSA key', () => {
    assert.deepEqual(parseDkimRecord('v=DKIM1; p=QUJD'), { kind: 'key', algorithm: 'rsa', publicKeyValue: 'QUJD' });
  });

  test('white space inside p= is ignored', () => {
    assert.deepEqual(parseDkimRecord('v=DKIM1;k=ed25519; p=QU JD\t'), { kind: 'key', algorithm: 'ed25519', publicKeyValue: 'QUJD' });
  });

  test('an empty p= is a revoked key', () => {
    assert.deepEqual(parseDkimRecord('v=DKIM1; k=rsa; p='), { kind: 'revoked' });
  });

  test('a record without p= or with another version is invalid', () => {
    assert.equal(parseDkimRecord('v=DKIM1; k=rsa').kind, 'invalid');
    assert.equal(parseDkimRecord('v=DKIM2; p=QUJD').kind, 'invalid');
    assert.equal(parseDkimRecord('v=spf1 -all').kind, 'invalid');
  });
});

describe('comparing a published key with the configured one', () => {
  const ours = { algorithm: 'rsa' as const, publicKeyValue: publicKeyDnsValue(rsaPublic) };

  test('the same key matches', () => {
    assert.equal(publishedKeyMatches({ algorithm: 'rsa', publicKeyValue: ours.publicKeyValue }, ours), true);
  });

  test('the same RSA key published as a bare RSAPublicKey (PKCS#1) matches too', () => {
    const pkcs1 = (rsaPublic.export({ type: 'pkcs1', format: 'der' }) as Buffer).toString('base64');
    assert.equal(publishedKeyMatches({ algorithm: 'rsa', publicKeyValue: pkcs1 }, ours), true);
  });

  test('another key, or the right key under the wrong k=, does not match', () => {
    const other = publicKeyDnsValue(createPublicKey(createPrivateKey(newKeyPem('rsa'))));
    assert.equal(publishedKeyMatches({ algorithm: 'rsa', publicKeyValue: other }, ours), false);
    assert.equal(publishedKeyMatches({ algorithm: 'ed25519', publicKeyValue: ours.publicKeyValue }, ours), false);
  });
});
