import { z } from 'zod';
import { isSupportedHash } from './passwordHash.js';
import { senderPatternProblem } from './senderPattern.js';

/**
 * The shape of the users file:
 *
 *     users:
 *       alice:
 *         password: "$scrypt$..."
 *         senders: [alice@example.com, "*@alerts.example.com"]
 *         groups: [staff]
 *
 * Objects are strict so a misspelt key ("sender:") fails with its path instead of silently
 * granting nothing. User names are the keys of `users`; they are checked separately (see
 * userNameProblem) because zod's record type would assign a key named `__proto__` to the
 * prototype instead of keeping it as a user.
 */

const MAX_USER_NAME_LENGTH = 64;
// No whitespace (it cannot round-trip through most SASL clients' prompts), no ':' (it splits
// htpasswd lines) and no control or format characters (they could forge or hide log text).
const USER_NAME = /^[^\s:\p{Cc}\p{Cf}]+$/u;

/** Why `name` cannot be a user name, or undefined when it can. */
export function userNameProblem(name: string): string | undefined {
  const length = [...name].length;
  if (length === 0) return 'a user name must not be empty';
  if (length > MAX_USER_NAME_LENGTH) return `a user name must be at most ${MAX_USER_NAME_LENGTH} characters`;
  if (!USER_NAME.test(name)) return "a user name must not contain whitespace, ':' or control characters";
  return undefined;
}

export const senderPatternSchema = z.string().superRefine((pattern, ctx) => {
  const problem = senderPatternProblem(pattern);
  if (problem) ctx.addIssue({ code: 'custom', message: problem });
});

export const userEntrySchema = z.strictObject({
  /** A scrypt or bcrypt hash; never the password itself. */
  password: z.string().refine(isSupportedHash, {
    // The value is not repeated: it is a hash, or worse a password typed in by hand.
    message: 'is not a supported password hash (scrypt "$scrypt$..." or bcrypt "$2y$..." of cost 4 to 12); set one with `postern user passwd NAME`',
  }),
  /** Addresses and patterns this user may use as MAIL FROM; see senderPattern.ts. */
  senders: z.array(senderPatternSchema).default([]),
  /** Free-form names that policy rules can match on. */
  groups: z.array(z.string().min(1, 'a group name must not be empty')).default([]),
});

export type UserEntry = z.output<typeof userEntrySchema>;

const isMapping = (value: unknown): value is Record<string, unknown> =>
  value !== null && typeof value === 'object' && !Array.isArray(value);

export const usersFileSchema = z.strictObject({
  users: z.custom<Record<string, unknown>>(isMapping, 'must be a mapping of user names to users'),
});
