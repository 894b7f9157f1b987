import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFile, stat, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { parseDkimPrivateKey } from '../../src/dkim/dkimKeys.js';
import { dkimRecordText } from '../../src/dkim/dnsRecord.js';
import { keyDirectory, newKeyPem, publishedRecord, writeKeyFile } from '../helpers/dkimFixtures.js';
import { startDnsServer, type DnsServer } from '../helpers/dnsServer.js';

const REPO = resolve(import.meta.dirname, '../..');

interface Run {
  status: number;
  stdout: string;
  stderr: string;
}

/** `postern dkim ...` as its own process, as an operator runs it. */
function postern(...args: string[]): Promise<Run> {
  return new Promise((resolvePromise) => {
    execFile(process.execPath, ['--import', 'tsx', join(REPO, 'src/cli/index.ts'), 'dkim', ...args], { cwd: REPO, encoding: 'utf8' }, (error, stdout, stderr) =>
      resolvePromise({ status: error ? Number(error.code ?? 1) : 0, stdout, stderr }),
    );
  });
}

/** The character-strings of the zone file line keygen prints. */
function printedRecord(stdout: string): { name: string; strings: string[] } {
  const line = stdout.split('\n').find((l) => l.includes(' IN TXT '));
  assert.ok(line, `keygen prints a zone file line:\n${stdout}`);
  const name = line.slice(0, line.indexOf(' ')).replace(/\.$/, '');
  return { name, strings: [...line.matchAll(/"([^"]*)"/g)].map((m) => m[1]!) };
}

describe('postern dkim keygen', () => {
  let dir: { dir: string; remove(): Promise<void> };
  let configFile: string;
  before(async () => {
    dir = await keyDirectory();
    configFile = join(dir.dir, 'postern.yaml');
    await writeFile(configFile, 'hostname: postern.test\n');
  });
  after(() => dir.remove());

  test('writes a 2048-bit RSA key (mode 0600) next to the configuration and prints the record and the configuration to add', async () => {
    const run = await postern('keygen', '--domain', 'Example.com', '--selector', 's2026', '--config', configFile);
    assert.equal(run.status, 0, run.stderr);
    const path = join(dir.dir, 'certs', 'dkim', 'example.com.s2026.key');
    assert.equal((await stat(path)).mode & 0o777, 0o600);
    const key = parseDkimPrivateKey(await readFile(path), path);
    assert.equal(key.algorithm, 'rsa');
    assert.equal(key.bits, 2048);

    const record = printedRecord(run.stdout);
    assert.equal(record.name, 's2026._domainkey.example.com');
    for (const s of record.strings) assert.ok(s.length <= 255, 'each TXT string fits 255 octets');
    assert.equal(record.strings.join(''), dkimRecordText('rsa', key.publicKeyValue));
    assert.match(run.stdout, /- \{ domain: example\.com, selector: s2026, keyFile: "certs\/dkim\/example\.com\.s2026\.key", active: true \}/);
  });

  test('refuses to overwrite an existing key file unless told to with --force', async () => {
    const path = join(dir.dir, 'certs', 'dkim', 'example.com.again.key');
    assert.equal((await postern('keygen', '--domain', 'example.com', '--selector', 'again', '--config', configFile)).status, 0);
    const first = await readFile(path, 'utf8');

    const refused = await postern('keygen', '--domain', 'example.com', '--selector', 'again', '--config', configFile);
    assert.equal(refused.status, 1);
    assert.match(refused.stderr, /Refusing to overwrite .*example\.com\.again\.key: it already exists \(pass --force/);
    assert.equal(await readFile(path, 'utf8'), first);

    const forced = await postern('keygen', '--domain', 'example.com', '--selector', 'again', '--config', configFile, '--force');
    assert.equal(forced.status, 0, forced.stderr);
    assert.notEqual(await readFile(path, 'utf8'), first);
  });

  test('writes an Ed25519 key exactly where --out says, with a k=ed25519 record', async () => {
    const out = join(dir.dir, 'elsewhere', 'ed.pem');
    const run = await postern('keygen', '--domain', 'example.com', '--selector', 'ed1', '--algorithm', 'ed25519', '--out', out, '--config', configFile);
    assert.equal(run.status, 0, run.stderr);
    const key = parseDkimPrivateKey(await readFile(out), out);
    assert.equal(key.algorithm, 'ed25519');
    assert.equal(printedRecord(run.stdout).strings.join(''), `v=DKIM1; k=ed25519; p=${key.publicKeyValue}`);
  });

  test('refuses RSA keys under 2048 bits and --bits for Ed25519', async () => {
    const short = await postern('keygen', '--domain', 'example.com', '--selector', 'x', '--bits', '1024', '--out', join(dir.dir, 'short.key'));
    assert.equal(short.status, 1);
    assert.match(short.stderr, /2048 to 8192 bits, not 1024/);
    const ed = await postern('keygen', '--domain', 'example.com', '--selector', 'x', '--algorithm', 'ed25519', '--bits', '2048', '--out', join(dir.dir, 'ed.key'));
    assert.equal(ed.status, 1);
    assert.match(ed.stderr, /--bits applies to RSA keys only/);
  });
});

describe('postern dkim check', () => {
  let dir: { dir: string; remove(): Promise<void> };
  let dns: DnsServer;
  let configFile: string;

  before(async () => {
    dir = await keyDirectory();
    configFile = join(dir.dir, 'postern.yaml');
    await writeFile(configFile, 'hostname: postern.test\n');
    // The operator's flow: keygen, publish what it printed, check.
    const generated = await postern('keygen', '--domain', 'ok.example.com', '--selector', 's1', '--config', configFile);
    assert.equal(generated.status, 0, generated.stderr);
    const printed = printedRecord(generated.stdout);

    const different = await writeKeyFile(dir.dir, 'different.key', newKeyPem('rsa'));
    const unpublished = await writeKeyFile(dir.dir, 'unpublished.key', newKeyPem('ed25519'));
    const revoked = await writeKeyFile(dir.dir, 'revoked.key', newKeyPem('rsa'));
    dns = await startDnsServer({
      zone: 'example.com',
      txt: {
        [printed.name]: [printed.strings],
        ...publishedRecord('s1', 'different.example.com', newKeyPem('rsa')),
        's1._domainkey.revoked.example.com': ['v=DKIM1; k=rsa; p='],
      },
    });
    await writeFile(
      configFile,
      [
        'hostname: postern.test',
        `dns: { servers: ["${dns.server}"] }`,
        'dkim:',
        '  keys:',
        '    - { domain: ok.example.com, selector: s1, keyFile: certs/dkim/ok.example.com.s1.key }',
        `    - { domain: ok.example.com, selector: retired, keyFile: ${JSON.stringify(unpublished)}, active: false }`,
        `    - { domain: different.example.com, selector: s1, keyFile: ${JSON.stringify(different)} }`,
        `    - { domain: unpublished.example.com, selector: s1, keyFile: ${JSON.stringify(unpublished)} }`,
        `    - { domain: revoked.example.com, selector: s1, keyFile: ${JSON.stringify(revoked)} }`,
        '',
      ].join('\n'),
    );
  });
  after(async () => {
    await dns?.stop();
    await dir?.remove();
  });

  test('a published key that matches passes; an inactive key that is not published is reported but does not fail', async () => {
    const run = await postern('check', '--domain', 'ok.example.com', '--config', configFile);
    assert.equal(run.status, 0, `${run.stdout}${run.stderr}`);
    assert.match(run.stdout, /^s1\._domainkey\.ok\.example\.com\s+rsa\s+active\s+OK: published and matches the configured key$/m);
    assert.match(run.stdout, /^retired\._domainkey\.ok\.example\.com\s+ed25519\s+inactive\s+NOT PUBLISHED/m);
  });

  test('an active key whose record holds a different key fails', async () => {
    const run = await postern('check', '--domain', 'different.example.com', '--config', configFile);
    assert.equal(run.status, 1);
    assert.match(run.stdout, /s1\._domainkey\.different\.example\.com\s+rsa\s+active\s+DIFFERENT KEY: published, but with a different key/);
  });

  test('an active key that is not published fails', async () => {
    const run = await postern('check', '--domain', 'unpublished.example.com', '--config', configFile);
    assert.equal(run.status, 1);
    assert.match(run.stdout, /s1\._domainkey\.unpublished\.example\.com\s+ed25519\s+active\s+NOT PUBLISHED/);
  });

  test('an active key whose record is revoked (empty p=) fails', async () => {
    const run = await postern('check', '--domain', 'revoked.example.com', '--config', configFile);
    assert.equal(run.status, 1);
    assert.match(run.stdout, /REVOKED: the record has an empty p=/);
  });

  test('a domain with no configured key fails with a message saying so', async () => {
    const run = await postern('check', '--domain', 'example.org', '--config', configFile);
    assert.equal(run.status, 1);
    assert.match(run.stderr, /no DKIM key is configured for example\.org/);
  });
});
