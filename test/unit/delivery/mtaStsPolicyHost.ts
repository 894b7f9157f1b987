import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { DnsResolver } from '../../../src/policy/types.js';
import { MtaStsResolver, type MtaStsOptions } from '../../../src/delivery/mtaSts.js';
import { ManualClock } from '../../../src/util/clock.js';
import { silentLogger } from '../../../src/util/logger.js';
import { createTestCa, type TestCa } from '../../helpers/testCa.js';

/** What the policy host answers; tests change it between calls. */
export interface PolicyAnswer {
  status: number;
  headers: Record<string, string>;
  body: string;
}

export const ENFORCE_POLICY = 'version: STSv1\r\nmode: enforce\r\nmx: mail.example.test\r\nmx: *.backup.example.test\r\nmax_age: 86400\r\n';

/** A real HTTPS server on 127.0.0.1 playing mta-sts.<domain>, counting the requests it gets. */
export interface PolicyHost {
  port: number;
  answer: PolicyAnswer;
  /** Paths requested, in order, with the Host header each named. */
  requests: Array<{ path: string; host: string | undefined }>;
  close(): Promise<void>;
}

export async function startPolicyHost(tls: { certPem: string; keyPem: string }, answer: Partial<PolicyAnswer> = {}): Promise<PolicyHost> {
  const host: PolicyHost = {
    port: 0,
    answer: { status: 200, headers: { 'content-type': 'text/plain' }, body: ENFORCE_POLICY, ...answer },
    requests: [],
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
  const server: Server = createServer({ cert: tls.certPem, key: tls.keyPem }, (req, res) => {
    host.requests.push({ path: req.url ?? '', host: req.headers.host });
    res.writeHead(host.answer.status, host.answer.headers);
    res.end(host.answer.body);
  });
  // A refused handshake (the client distrusts the certificate) is the expected outcome of
  // some tests, not a server failure.
  server.on('tlsClientError', () => {});
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  host.port = (server.address() as AddressInfo).port;
  return host;
}

/** DNS as a plain map of "RRTYPE name" to records, in Node's shapes; what is missing is ENODATA. */
export class FakeZone {
  private readonly records = new Map<string, unknown>();
  readonly queries: string[] = [];

  set(name: string, rrtype: string, records: unknown): this {
    this.records.set(`${rrtype} ${name}`, records);
    return this;
  }

  delete(name: string, rrtype: string): this {
    this.records.delete(`${rrtype} ${name}`);
    return this;
  }

  readonly resolve: DnsResolver = async (name, rrtype) => {
    const key = `${rrtype} ${name}`;
    this.queries.push(key);
    if (!this.records.has(key)) throw Object.assign(new Error(`queryNoData ${name}`), { code: 'ENODATA' });
    const records = this.records.get(key);
    if (records instanceof Error) throw records;
    return records;
  };
}

/** A zone publishing example.test's MTA-STS record and its policy host at 127.0.0.1. */
export function exampleZone(id = 'policy1'): FakeZone {
  return new FakeZone().set('_mta-sts.example.test', 'TXT', [[`v=STSv1; id=${id};`]]).set('mta-sts.example.test', 'A', ['127.0.0.1']);
}

export interface Scenario {
  ca: TestCa;
  host: PolicyHost;
  zone: FakeZone;
  clock: ManualClock;
  sts: MtaStsResolver;
  close(): Promise<void>;
}

let sharedCa: TestCa | undefined;
let sharedPolicyHostTls: { certPem: string; keyPem: string } | undefined;

/** One CA for a test file's scenarios: key generation is the slow part of setting one up. */
export function testCa(): TestCa {
  sharedCa ??= createTestCa();
  return sharedCa;
}

/** The certificate of mta-sts.example.test and mta-sts.other.test, issued by testCa() once per test file. */
export function policyHostTls(): { certPem: string; keyPem: string } {
  sharedPolicyHostTls ??= testCa().issue(['mta-sts.example.test', 'mta-sts.other.test']);
  return sharedPolicyHostTls;
}

/** example.test with a trusted policy host answering `answer`, and a resolver trusting the CA. */
export async function scenario(answer: Partial<PolicyAnswer> = {}, options: Partial<MtaStsOptions> = {}): Promise<Scenario> {
  const ca = testCa();
  const host = await startPolicyHost(policyHostTls(), answer);
  const zone = exampleZone();
  const clock = new ManualClock();
  const sts = new MtaStsResolver({
    resolver: zone.resolve,
    clock,
    logger: silentLogger(),
    httpsPort: host.port,
    ca: ca.caPem,
    timeoutMs: 5000,
    ...options,
  });
  return { ca, host, zone, clock, sts, close: () => host.close() };
}
