import { setFlagsFromString } from 'node:v8';

/**
 * Imported for its effect: V8 finishes a regular expression match that backtracks more than
 * 50,000 times on its linear-time engine instead of going on backtracking.
 *
 * Operators write patterns (the headers rule, their own rule modules) that run against text a
 * client chooses. On a crafted value, a pattern such as `(a+)+$` takes exponential time in
 * V8's backtracking engine, and a match cannot be interrupted: one header would stall every
 * session of the process. Postfix's header_checks lean on PCRE's match limit for the same
 * reason; here the match completes, with the same result, in linear time. The fallback cannot
 * run backreferences or lookaround, so the headers rule refuses patterns that use them and
 * can backtrack catastrophically (see safePatternProblem in rules/headers.ts).
 *
 * The flag applies to every expression, including those compiled before it was set.
 */
setFlagsFromString('--enable-experimental-regexp-engine-on-excessive-backtracks');
