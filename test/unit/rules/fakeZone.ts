import type { DnsResolver } from '../../../src/policy/types.js';

/**
 * A zone as Node's resolver presents it: `records` maps "name TYPE" to the answer; a name with
 * no entry at all is ENOTFOUND, a name with entries of other types ENODATA, and an entry that
 * is an error code string ('ETIMEOUT') fails with that code. Every question is logged.
 */
export class FakeZone {
  readonly asked: string[] = [];
  constructor(private readonly records: Record<string, unknown>) {}

  readonly resolver: DnsResolver = async (name, rrtype) => {
    const key = `${name} ${rrtype}`;
    this.asked.push(key);
    const answer = this.records[key];
    if (typeof answer === 'string') throw Object.assign(new Error(`query ${answer} ${name}`), { code: answer });
    if (answer !== undefined) return answer;
    const known = Object.keys(this.records).some((other) => other.startsWith(`${name} `));
    throw Object.assign(new Error(`query failed ${name}`), { code: known ? 'ENODATA' : 'ENOTFOUND' });
  };
}

/** One TXT record as Node returns it: a list of records, each a list of strings. */
export const txt = (...records: string[]) => records.map((record) => [record]);
