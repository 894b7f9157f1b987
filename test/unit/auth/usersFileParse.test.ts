import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { isPosternError } from '../../../src/util/errors.js';
import { parseUsersFile, UsersFileError } from '../../../src/auth/usersFile.js';

const HASH = '$2y$05$' + 'a'.repeat(53);
const FILE = '/etc/postern/users.yaml';

function parseError(text: string): UsersFileError {
  try {
    parseUsersFile(text, FILE);
  } catch (err) {
    assert.ok(err instanceof UsersFileError);
    assert.ok(isPosternError(err, 'USERS_FILE_INVALID'));
    return err;
  }
  assert.fail('expected the users file to be rejected');
}

describe('users file parsing', () => {
  test('a valid file gives users by name with senders and groups, defaults empty', () => {
    const users = parseUsersFile(
      [
        'users:',
        '  alice:',
        `    password: "${HASH}"`,
        '    senders: [alice@example.com, "*@alerts.example.com"]',
        '    groups: [staff]',
        '  bob:',
        `    password: "${HASH}"`,
      ].join('\n'),
      FILE,
    );
    assert.deepEqual([...users.keys()], ['alice', 'bob']);
    assert.deepEqual(users.get('alice'), {
      name: 'alice',
      passwordHash: HASH,
      senders: ['alice@example.com', '*@alerts.example.com'],
      groups: ['staff'],
    });
    assert.deepEqual(users.get('bob')?.senders, []);
    assert.deepEqual(users.get('bob')?.groups, []);
  });

  test('an unknown key is rejected with its path and line', () => {
    const err = parseError(['users:', '  alice:', `    password: "${HASH}"`, '    sender: [alice@example.com]'].join('\n'));
    assert.deepEqual(err.problems, [{ key: 'users.alice.sender', line: 4, reason: 'unknown key' }]);
    assert.match(err.message, /\/etc\/postern\/users\.yaml/);
    assert.match(err.message, /line 4: users\.alice\.sender: unknown key/);
  });

  test('an unknown top-level key is rejected too', () => {
    const err = parseError(['users: {}', 'admins: [alice]'].join('\n'));
    assert.deepEqual(err.problems, [{ key: 'admins', line: 2, reason: 'unknown key' }]);
  });

  test('errors name the path, line and key of a bad value', () => {
    const err = parseError(
      ['users:', '  alice:', `    password: "${HASH}"`, '    senders:', '      - alice@example.com', '      - not-an-address'].join('\n'),
    );
    assert.equal(err.problems.length, 1);
    assert.equal(err.problems[0]!.key, 'users.alice.senders.1');
    assert.equal(err.problems[0]!.line, 6);
    assert.equal(err.line, 6);
    assert.match(err.reason, /^users\.alice\.senders\.1: must be an address/);
  });

  test('a password that is not a supported hash is rejected without repeating it', () => {
    const err = parseError(['users:', '  alice:', '    password: hunter2-plaintext'].join('\n'));
    assert.equal(err.problems[0]!.key, 'users.alice.password');
    assert.equal(err.problems[0]!.line, 3);
    assert.doesNotMatch(err.message, /hunter2/);
  });

  test('bad user names are rejected at the line of the name', () => {
    const err = parseError(['users:', '  "alice smith":', `    password: "${HASH}"`, '  "a:b":', `    password: "${HASH}"`, `  ${'x'.repeat(65)}:`, `    password: "${HASH}"`].join('\n'));
    assert.deepEqual(
      err.problems.map((p) => [p.key.slice(0, 12), p.line]),
      [['users.alice ', 2], ['users.a:b', 4], ['users.xxxxxx', 6]],
    );
  });

  test('a user named __proto__ stays an ordinary user', () => {
    const users = parseUsersFile(['users:', '  __proto__:', `    password: "${HASH}"`].join('\n'), FILE);
    assert.deepEqual([...users.keys()], ['__proto__']);
    assert.equal(users.get('__proto__')?.passwordHash, HASH);
  });

  test('a user listed twice is a YAML error with a line', () => {
    const err = parseError(['users:', '  alice:', `    password: "${HASH}"`, '  alice:', `    password: "${HASH}"`].join('\n'));
    assert.equal(err.problems[0]!.line, 4);
    assert.match(err.problems[0]!.reason, /unique/i);
  });

  test('broken YAML syntax is reported with its line and without the text of the line', () => {
    const err = parseError(['users:', '  alice:', `    password: "${HASH}`, '    groups: [staff'].join('\n'));
    assert.ok(err.line !== undefined);
    assert.doesNotMatch(err.message, /\$2y\$/);
  });

  test('an empty file, a missing users key and a users list are all rejected', () => {
    assert.match(parseError('').reason, /users/);
    assert.match(parseError('# nothing here\n').reason, /users/);
    assert.equal(parseError('{}').problems[0]!.key, 'users');
    assert.equal(parseError('users: [alice]').problems[0]!.key, 'users');
    assert.equal(parseError('users:\n  alice:\n').problems[0]!.key, 'users.alice');
  });
});
