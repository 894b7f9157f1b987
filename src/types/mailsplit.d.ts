/**
 * Types for the part of mailsplit (https://github.com/zone-eu/mailsplit) Postern uses: the
 * Splitter turns a message stream into its MIME nodes and their body lines, without holding
 * bodies in memory. The package ships no types of its own.
 */
declare module 'mailsplit' {
  import { Transform } from 'node:stream';

  /** A header value split into its value and parameters, RFC 2231 continuations joined. */
  interface ParsedHeaderValue {
    value: string;
    params: Record<string, string>;
  }

  /** The libmime instance each node carries, configured as the splitter is. */
  interface NodeMime {
    parseHeaderValue(value: string): ParsedHeaderValue;
    /** Decodes RFC 2047 encoded-words ("=?UTF-8?B?...?="). */
    decodeWords(value: string): string;
  }

  interface NodeHeaders {
    /** The first field of that name, unfolded, not decoded; '' when absent. */
    getFirst(key: string): string;
  }

  /** One MIME part, emitted once its header is read. */
  export interface MimeNode {
    type: 'node';
    root: boolean;
    headers: NodeHeaders;
    /** Lower-case media type, e.g. "application/pdf"; false when absent. */
    contentType: string | false;
    /** Lower-case disposition ("attachment", "inline"); false when absent. */
    disposition: string | false;
    /** The Content-Disposition filename, else the Content-Type name, decoded; false when neither. */
    filename: string | false;
    multipart: string | false;
    libmime: NodeMime;
  }

  /** A line of a part's body (or of a multipart's preamble and boundaries). */
  export interface BodyChunk {
    type: 'body' | 'data';
    node: MimeNode;
    value: Buffer;
  }

  export interface SplitterOptions {
    /** Largest header block of one part, in bytes (default 1 MiB). */
    maxHeadSize?: number;
    /** Most parts in one message (default 1000). */
    maxChildNodes?: number;
    ignoreEmbedded?: boolean;
    defaultInlineEmbedded?: boolean;
  }

  /** A Transform: bytes in, MimeNode and BodyChunk objects out. Fails with code EMAXLEN past the limits. */
  export class Splitter extends Transform {
    constructor(options?: SplitterOptions);
  }
}
