import type { LoginLockout } from './lockout.js';
import { verifyAgainstDummy, verifyPassword } from './passwordHash.js';
import type { User, UserStore } from './userStore.js';
import type { VerifiedLoginCache } from './verifiedLoginCache.js';

/**
 * The answer to a login. `invalid` does not say whether the name or the password was wrong:
 * the SMTP layer must answer both alike (535 5.7.8, RFC 4954 section 6). `locked` is the
 * temporary refusal while the lockout holds (454 4.7.0).
 */
export type AuthOutcome =
  | { result: 'success'; user: User }
  | { result: 'invalid' }
  | { result: 'locked'; retryAfterMs: number };

export interface LoginAttempt {
  username: string;
  password: string;
  clientIp: string;
}

export interface AuthenticatorDeps {
  users: UserStore;
  lockout: LoginLockout;
  /** Recent successful logins; a repeat login with the same password skips the scrypt work. */
  cache?: VerifiedLoginCache;
}

/**
 * Checks a user name and password (from AUTH PLAIN or LOGIN) against the users file, with the
 * failed-login lockout around it. User names are case-sensitive, as the users file spells
 * them; the lockout counts them case-insensitively so case variants cannot dodge it.
 */
export class Authenticator {
  constructor(private readonly deps: AuthenticatorDeps) {}

  async authenticate({ username, password, clientIp }: LoginAttempt): Promise<AuthOutcome> {
    const lock = await this.deps.lockout.check(clientIp, username);
    if (lock.locked) return { result: 'locked', retryAfterMs: lock.retryAfterMs };

    const found = this.deps.users.find(username);
    // An unknown name costs the same scrypt work as a known one, so response time does not
    // reveal which names exist.
    const cached = found !== undefined && this.deps.cache?.matches(username, found.passwordHash, password) === true;
    const valid = cached || (found ? await verifyPassword(password, found.passwordHash) : await verifyAgainstDummy(password));
    if (!found || !valid) {
      await this.deps.lockout.recordFailure(clientIp, username);
      return { result: 'invalid' };
    }
    if (!cached) this.deps.cache?.remember(username, found.passwordHash, password);
    await this.deps.lockout.recordSuccess(username);
    return { result: 'success', user: found.user };
  }
}
