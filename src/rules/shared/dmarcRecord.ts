import getDmarcRecord from 'mailauth/lib/dmarc/get-dmarc-record.js';
import type { DnsResolver } from '../../policy/types.js';
import { alignmentMode, type AlignmentMode } from './alignment.js';

/**
 * The DMARC record that governs a From domain, looked up as receivers do (RFC 7489 section
 * 6.6.3): _dmarc.<domain>, and when that holds no record, _dmarc.<organizational domain>. More
 * than one v=DMARC1 record at a name counts as none, as the RFC says.
 */
export type DmarcLookup =
  | {
      status: 'found';
      adkim: AlignmentMode;
      aspf: AlignmentMode;
      /** What receivers are asked to do with mail that fails: none, quarantine or reject. */
      policy: string;
      fromOrganizationalDomain: boolean;
    }
  | { status: 'none' }
  /** The look-up failed for a reason that may pass (timeout, SERVFAIL, refused). */
  | { status: 'temperror' };

/** The DMARC record that governs `fromDomain` (lower-case ASCII), or why there is none. */
export async function lookUpDmarcRecord(fromDomain: string, resolver: DnsResolver): Promise<DmarcLookup> {
  let record: Awaited<ReturnType<typeof getDmarcRecord>>;
  try {
    // NXDOMAIN and NODATA come back as "no record"; anything else mailauth passes on.
    record = await getDmarcRecord(fromDomain, resolver);
  } catch {
    return { status: 'temperror' };
  }
  if (record === false) return { status: 'none' };
  return {
    status: 'found',
    adkim: alignmentMode(record.adkim),
    aspf: alignmentMode(record.aspf),
    // A record found at the organizational domain applies its sp= to subdomains, when it has one.
    policy: policyTag(record.isOrgRecord && record.sp !== undefined ? record.sp : record.p),
    fromOrganizationalDomain: record.isOrgRecord,
  };
}

function policyTag(value: unknown): string {
  return typeof value === 'string' && value.trim() !== '' ? value.trim().toLowerCase() : 'none';
}
