import { randomBytes } from 'node:crypto';
import { mkdir, readFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { isMap, isScalar, isSeq, parseDocument, type Document, type YAMLMap } from 'yaml';
import { writeFileAtomic } from '../util/atomicFile.js';
import { hashPassword } from './passwordHash.js';
import { senderPatternProblem } from './senderPattern.js';
import { parseUsersFile, UsersFileError } from './usersFile.js';
import { userNameProblem } from './usersFileSchema.js';

/**
 * Changes to the users file, for `postern user ...` and the first start. Edits go through
 * yaml's Document API so the operator's comments and layout survive, and every write is
 * atomic (temporary file, fsync, rename, fsync of the directory): a gateway watching the file
 * sees the old content or the new, never half of it. The file is always mode 0600: it holds
 * password hashes.
 */

const FILE_MODE = 0o600;
const DIR_MODE = 0o700;

const HEADER = [
  ' Postern users: who may submit mail (SMTP AUTH) and which senders they may use.',
  ' Add a user with `postern user add NAME --sender ADDRESS`, change a password with',
  ' `postern user passwd NAME`. Hashes are scrypt, or bcrypt as `htpasswd -B` writes them.',
  ' senders: addresses, *@domain or *@*.domain (subdomains). A running gateway re-reads',
  ' this file when it changes.',
].join('\n');

export interface UserAttributes {
  senders?: readonly string[];
  groups?: readonly string[];
}

/** The name and groups of the user a fresh install starts with. */
export const INITIAL_USER = Object.freeze({ name: 'postmaster', groups: Object.freeze(['admin']) });

/**
 * Create the users file for a first start: one user `postmaster` (group admin) who may use
 * `senders` as MAIL FROM, with a random 24-character password, which is returned so the
 * caller can show it once. Parent directories are created. Fails with EEXIST if the file
 * appeared meanwhile, without touching it; throws RangeError for a sender that is not a valid
 * pattern.
 */
export async function createInitialUsersFile(path: string, senders: readonly string[] = []): Promise<{ password: string }> {
  checkSenders(senders);
  // 18 random bytes are 24 base64url characters: 144 bits, nothing to escape in a shell.
  const password = randomBytes(18).toString('base64url');
  const doc = newUsersDocument();
  setUserNode(doc, INITIAL_USER.name, await hashPassword(password), { senders, groups: INITIAL_USER.groups });
  const text = serialize(doc);
  parseUsersFile(text, path);
  await mkdir(dirname(path), { recursive: true, mode: DIR_MODE });
  await writeFileAtomic(path, text, { mode: FILE_MODE, exclusive: true });
  return { password };
}

/**
 * Add a user. Creates the file (without the initial postmaster) if it does not exist. Throws
 * RangeError for a bad name, sender or group, or when the user already exists.
 */
export async function addUser(path: string, name: string, hash: string, attributes: UserAttributes = {}): Promise<void> {
  const senders = attributes.senders ?? [];
  const groups = attributes.groups ?? [];
  checkName(name);
  checkSenders(senders);
  for (const group of groups) {
    if (group.length === 0) throw new RangeError('A group name must not be empty');
  }
  await editUsersFile(path, { createIfMissing: true }, (doc, users) => {
    if (users.has(name)) throw new RangeError(`User ${name} already exists in ${path}; use \`postern user passwd ${name}\``);
    setUserNode(doc, name, hash, { senders, groups });
  });
}

/** Replace a user's password hash, keeping everything else. Throws RangeError for an unknown user. */
export async function setPassword(path: string, name: string, hash: string): Promise<void> {
  await editUsersFile(path, { createIfMissing: false }, (doc, users) => {
    requireUser(users, name, path);
    const password = doc.createNode(hash);
    password.type = 'QUOTE_DOUBLE';
    doc.setIn(['users', name, 'password'], password);
  });
}

/** Remove a user. Throws RangeError for an unknown user. */
export async function removeUser(path: string, name: string): Promise<void> {
  await editUsersFile(path, { createIfMissing: false }, (_doc, users) => {
    requireUser(users, name, path);
    users.delete(name);
  });
}

function checkName(name: string): void {
  const problem = userNameProblem(name);
  if (problem) throw new RangeError(`Cannot use "${name}" as a user name: ${problem}`);
}

function checkSenders(senders: readonly string[]): void {
  for (const sender of senders) {
    const problem = senderPatternProblem(sender);
    if (problem) throw new RangeError(`Sender "${sender}" ${problem}`);
  }
}

function requireUser(users: YAMLMap, name: string, path: string): void {
  if (!users.has(name)) throw new RangeError(`No user ${name} in ${path}`);
}

/** Hashes stay on one line (no folding), lists read as in the docs: [a, b]. */
function serialize(doc: Document): string {
  return doc.toString({ lineWidth: 0, flowCollectionPadding: false });
}

function newUsersDocument(): Document {
  const doc = parseDocument('users: {}\n');
  doc.commentBefore = HEADER;
  return doc;
}

function setUserNode(doc: Document, name: string, hash: string, attributes: UserAttributes): void {
  const entry = doc.createNode({ password: hash, senders: attributes.senders ?? [], groups: attributes.groups ?? [] });
  for (const item of entry.items) {
    // Quoted so the '$' of a hash reads as text to any YAML tool; lists on one line as in the docs.
    if (isScalar(item.value)) item.value.type = 'QUOTE_DOUBLE';
    if (isSeq(item.value)) item.value.flow = true;
  }
  const users = doc.get('users', true);
  if (isMap(users)) users.flow = false;
  doc.setIn(['users', name], entry);
}

/**
 * Read, check, change, check again, write. A file that is already invalid is not edited: the
 * operator should see and fix that problem rather than have it rewritten around.
 */
async function editUsersFile(
  path: string,
  options: { createIfMissing: boolean },
  edit: (doc: Document, users: YAMLMap) => void,
): Promise<void> {
  let text: string | undefined;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    if (!options.createIfMissing) throw new UsersFileError(path, [{ key: '', reason: 'the file does not exist' }]);
  }
  let doc: Document;
  if (text === undefined) {
    doc = newUsersDocument();
  } else {
    parseUsersFile(text, path);
    doc = parseDocument(text, { uniqueKeys: true });
  }
  const users = doc.get('users', true);
  if (!isMap(users)) throw new UsersFileError(path, [{ key: 'users', reason: 'must be a mapping of user names to users' }]);
  edit(doc, users);
  const updated = serialize(doc);
  parseUsersFile(updated, path);
  if (text === undefined) await mkdir(dirname(path), { recursive: true, mode: DIR_MODE });
  await writeFileAtomic(path, updated, { mode: FILE_MODE, keepOwner: true });
}
