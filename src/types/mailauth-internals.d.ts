/**
 * Types for two of mailauth's modules that ship without declarations: the DMARC record look-up
 * (RFC 7489 section 6.6.3, with the organizational-domain fallback) and the alignment helper,
 * which compares organizational domains through mailauth's public suffix list (tldts).
 */
declare module 'mailauth/lib/dmarc/get-dmarc-record.js' {
  /** The record's tags by lower-case name (p, sp, adkim, aspf, pct...), as published. */
  interface DmarcRecord {
    [tag: string]: string | number | boolean | undefined;
    /** The record as published. */
    rr: string;
    /** True when the record was found at the organizational domain rather than the domain itself. */
    isOrgRecord: boolean;
  }

  /**
   * The one DMARC record of `domain` (or of its organizational domain), false when there is
   * none (no TXT, NXDOMAIN, or not exactly one v=DMARC1 record); rejects on other DNS errors.
   */
  function getDmarcRecord(domain: string, resolver: (name: string, rrtype: string) => Promise<unknown>): Promise<DmarcRecord | false>;
  export = getDmarcRecord;
}

declare module 'mailauth/lib/tools.js' {
  const tools: {
    /**
     * The entry of `domainList` whose organizational domain is that of `fromDomain` (relaxed
     * alignment, RFC 7489 section 3.1), or false. Its third argument (strict) is left out on
     * purpose: with it, mailauth still falls back to comparing organizational domains.
     */
    getAlignment(fromDomain: string, domainList: Array<string | { domain: string }>): { domain: string } | false;
  };
  export = tools;
}
