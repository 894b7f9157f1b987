import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Splitter, type BodyChunk, type MimeNode } from 'mailsplit';
import safeRegex from 'safe-regex2';
import { z } from 'zod';
import '../util/regexpBacktrackLimit.js';
import { CONTINUE, type HeaderField, type RuleType, type Verdict } from '../policy/types.js';
import { quoted } from './shared/replyText.js';

/**
 * Checks on the message at `data`: header fields it must carry (RFC 5322 section 3.6 makes
 * Date and From mandatory; receivers increasingly refuse mail without a Message-ID), fields it
 * must not carry, patterns on header values, and attachments by file name extension.
 *
 * Patterns are matched against the unfolded value as written, with RFC 2047 encoded-words
 * left as they are, as Postfix's header_checks do.
 *
 * Attachments are found by walking the MIME structure with mailsplit, at any depth (a part
 * inside multipart/alternative inside multipart/mixed), by the Content-Disposition filename
 * and the Content-Type name parameter, both decoded (RFC 2231 parameters, RFC 2047 words).
 * The message is read from the spool file once, as a stream; bodies are never held.
 * Archives are not opened, and a forwarded message attached as message/rfc822 with
 * disposition "attachment" is not descended into.
 */

// RFC 5322 section 3.6.8: a field name is printable US-ASCII except the colon.
const FIELD_NAME = /^[\x21-\x39\x3b-\x7e]+$/;
const fieldNameSchema = z.string().regex(FIELD_NAME, 'is not a header field name (printable ASCII, no colon or spaces)');

const EXTENSION = /^[^\s./\\]+(?:\.[^\s./\\]+)*$/;

const patternSchema = z
  .strictObject({
    /** The header field name, any case. */
    header: fieldNameSchema,
    /** A JavaScript regular expression (source only, no slashes), matched against the value. */
    match: z.string().min(1),
    ignoreCase: z.boolean().default(false),
    /** reject: refuse when any field of that name matches; require: every field of that name must match, and one must exist. */
    action: z.enum(['reject', 'require']),
    /** The reply text the sender sees instead of the default; say what they can change. */
    text: z
      .string()
      .min(1)
      .max(200)
      .regex(/^[^\p{Cc}]*$/u, 'must be one line without control characters')
      .optional(),
  })
  .superRefine((pattern, ctx) => {
    try {
      new RegExp(pattern.match);
    } catch (err) {
      ctx.addIssue({ code: 'custom', path: ['match'], message: `is not a regular expression: ${(err as Error).message}` });
      return;
    }
    const problem = safePatternProblem(pattern.match);
    if (problem) ctx.addIssue({ code: 'custom', path: ['match'], message: problem });
  });

/** Backreferences (\1, \k<name>) and lookaround ((?=, (?!, (?<=, (?<!): what V8's linear-time engine cannot run. */
const NOT_LINEAR = /\\[1-9]|\\k<|\(\?<?[=!]/;

/**
 * Why a pattern could stall the gateway on a crafted header, or undefined. Header values come
 * from the client; a pattern that backtracks exponentially on some value is a way to stop
 * every session. Most such patterns finish on V8's linear-time engine once backtracking gets
 * out of hand (see util/regexpBacktrackLimit); one with backreferences or lookaround cannot, so
 * it must not have the nested quantifiers that make backtracking explode (safe-regex2's check).
 */
export function safePatternProblem(source: string): string | undefined {
  if (!NOT_LINEAR.test(source) || safeRegex(source)) return undefined;
  return 'could take exponential time on a crafted header: it nests quantifiers (such as (a+)+) and uses a backreference or lookaround, which the linear-time fallback cannot run; drop one of the two';
}

const paramsSchema = z
  .strictObject({
    /** Header fields every message must carry, e.g. [Date, Message-ID, From]. */
    require: z.array(fieldNameSchema).default([]),
    /** Header fields no message may carry. */
    forbid: z.array(fieldNameSchema).default([]),
    patterns: z.array(patternSchema).default([]),
    /** File name extensions refused as attachments, with or without the dot, any case: [exe, js, tar.gz]. */
    blockedExtensions: z
      .array(
        z
          .string()
          .transform((ext) => ext.trim().replace(/^\./, '').toLowerCase())
          .refine((ext) => EXTENSION.test(ext), 'is not a file name extension'),
      )
      .default([]),
  })
  .refine((p) => p.require.length + p.forbid.length + p.patterns.length + p.blockedExtensions.length > 0, {
    message: 'give at least one of require, forbid, patterns or blockedExtensions',
  });

export type HeadersParams = z.output<typeof paramsSchema>;

const reject = (enhanced: string, text: string): Verdict => ({ action: 'reject', code: 550, enhanced, text });

interface CompiledPattern {
  key: string;
  name: string;
  regex: RegExp;
  action: 'reject' | 'require';
  text: string | undefined;
}

function checkPattern(headers: readonly HeaderField[], pattern: CompiledPattern): Verdict {
  const values = headers.filter((field) => field.key === pattern.key).map((field) => field.value);
  if (pattern.action === 'reject') {
    return values.some((value) => pattern.regex.test(value))
      ? reject('5.7.1', pattern.text ?? `the ${pattern.name} header is not accepted`)
      : CONTINUE;
  }
  if (values.length === 0) return reject('5.6.0', pattern.text ?? `the message has no ${pattern.name} header`);
  return values.every((value) => pattern.regex.test(value))
    ? CONTINUE
    : reject('5.7.1', pattern.text ?? `the ${pattern.name} header does not have an accepted value`);
}

/** Decoded file names a part announces: the Content-Disposition filename and the Content-Type name. */
function announcedFileNames(node: MimeNode): Set<string> {
  const names = new Set<string>();
  if (node.filename) names.add(node.filename);
  const fromHeader = (header: string, param: string): void => {
    const raw = node.libmime.parseHeaderValue(node.headers.getFirst(header)).params[param];
    if (!raw) return;
    try {
      names.add(node.libmime.decodeWords(raw));
    } catch {
      names.add(raw); // an unknown charset: the extension is usually still readable
    }
  };
  fromHeader('Content-Disposition', 'filename');
  fromHeader('Content-Type', 'name');
  return names;
}

/**
 * The blocked extension `filename` ends in, if any. The last extension is the one that counts
 * ("invoice.pdf.exe" is an .exe). Windows ignores trailing dots and spaces ("x.exe. " runs as
 * x.exe), C code stops at a NUL, and invisible characters must not hide an extension.
 */
function blockedExtensionOf(filename: string, extensions: readonly string[]): string | undefined {
  const base = (filename.split('\0')[0] ?? '')
    .replace(/[\p{Cc}\p{Cf}]/gu, '')
    .split(/[\\/]/)
    .pop()!
    .replace(/[. ]+$/, '')
    .toLowerCase();
  return extensions.find((ext) => base.endsWith(`.${ext}`));
}

type AttachmentFinding = { blocked: string } | { unreadable: true } | undefined;

/** Walks the whole message; the first blocked extension met, or unreadable when mailsplit gives up on its structure. */
async function findBlockedAttachment(message: Readable, extensions: readonly string[], signal?: AbortSignal): Promise<AttachmentFinding> {
  let finding: AttachmentFinding;
  try {
    // The signal ends the walk (and closes the file) once the engine has given up on the rule.
    await pipeline(message, new Splitter(), async (items: AsyncIterable<MimeNode | BodyChunk>) => {
      for await (const item of items) {
        // Keep reading after a finding: the stream is a local file and the pipeline must end.
        if (finding !== undefined || item.type !== 'node') continue;
        for (const name of announcedFileNames(item)) {
          const blocked = blockedExtensionOf(name, extensions);
          if (blocked !== undefined) {
            finding = { blocked };
            break;
          }
        }
      }
    }, ...(signal ? [{ signal }] : []));
  } catch (err) {
    // Past mailsplit's limits (1000 parts, 1 MiB of header in one part) the structure cannot
    // be checked; the message would fail the same way on every retry.
    if ((err as { code?: unknown }).code === 'EMAXLEN') return { unreadable: true };
    throw err;
  }
  return finding;
}

const headers: RuleType<HeadersParams> = {
  type: 'headers',
  stages: ['data'],
  params: paramsSchema,
  description: 'required and forbidden header fields, header value patterns, blocked attachment types',
  create(params) {
    const required = params.require.map((name) => ({ name, key: name.toLowerCase() }));
    const forbidden = params.forbid.map((name) => ({ name, key: name.toLowerCase() }));
    const patterns: CompiledPattern[] = params.patterns.map((p) => ({
      key: p.header.toLowerCase(),
      name: p.header,
      regex: new RegExp(p.match, p.ignoreCase ? 'i' : ''),
      action: p.action,
      text: p.text,
    }));

    return {
      async evaluate(ctx) {
        const message = ctx.message;
        if (!message) return CONTINUE;
        const present = new Set(message.headers.map((field) => field.key));

        const missing = required.find(({ key }) => !present.has(key));
        if (missing) return reject('5.6.0', `the message has no ${missing.name} header`);
        const carried = forbidden.find(({ key }) => present.has(key));
        if (carried) return reject('5.7.1', `the message may not carry a ${carried.name} header`);
        for (const pattern of patterns) {
          const verdict = checkPattern(message.headers, pattern);
          if (verdict.action !== 'continue') return verdict;
        }

        if (params.blockedExtensions.length === 0) return CONTINUE;
        const finding = await findBlockedAttachment(message.open(), params.blockedExtensions, ctx.signal);
        if (finding === undefined) return CONTINUE;
        if ('unreadable' in finding) return reject('5.6.0', 'the message has too many parts, or too large a part header, to be checked');
        return reject('5.7.1', `attachments of type .${quoted(finding.blocked)} are not accepted`);
      },
    };
  },
};

export default headers;
