import { setTimeout as sleepFor } from 'node:timers/promises';
import { systemClock, type Clock } from '../util/clock.js';
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
  /**
   * Every answer other than success comes no earlier than this long after the attempt began
   * (Dovecot's auth_failure_delay). 0 answers at once.
   */
  failureDelayMs: number;
  /** Recent successful logins; a repeat login with the same password skips the scrypt work. */
  cache?: VerifiedLoginCache;
  /** Measures how long an attempt has taken so far (default: the system clock). */
  clock?: Clock;
  /** Waits out the rest of the failure delay (default: node:timers/promises setTimeout). */
  sleep?: (ms: number) => Promise<void>;
  /** A number in [0, 1) for the delay's jitter (default Math.random). */
  random?: () => number;
}

/** Up to this fraction of the failure delay is added at random, so the delay itself is no exact fingerprint. */
const FAILURE_DELAY_JITTER = 0.1;

/**
 * Checks a user name and password (from AUTH PLAIN or LOGIN) against the users file, with the
 * failed-login lockout around it. User names are case-sensitive, as the users file spells
 * them; the lockout counts them case-insensitively so case variants cannot dodge it.
 *
 * Every refusal ('invalid' and 'locked') is padded to the same minimum time since the attempt
 * began, as Dovecot's auth_failure_delay does. Verification time differs by hash (an unknown
 * name costs a dummy scrypt of ~100 ms, a cheap bcrypt hash a few ms, a locked login nothing),
 * so without the padding the response time would tell a wrong name from a wrong password and
 * show when a lockout holds; with it, a guesser also waits seconds per try.
 */
export class Authenticator {
  private readonly clock: Clock;
  private readonly sleep: (ms: number) => Promise<void>;
  private readonly random: () => number;

  constructor(private readonly deps: AuthenticatorDeps) {
    if (!Number.isFinite(deps.failureDelayMs) || deps.failureDelayMs < 0) {
      throw new RangeError(`The failure delay must be a duration of 0 or more, not ${deps.failureDelayMs} ms`);
    }
    this.clock = deps.clock ?? systemClock;
    this.sleep = deps.sleep ?? ((ms) => sleepFor(ms));
    this.random = deps.random ?? Math.random;
  }

  async authenticate({ username, password, clientIp }: LoginAttempt): Promise<AuthOutcome> {
    const startedAt = this.clock.now();
    const { lockout, users, cache } = this.deps;

    // Counted before the password is checked, so parallel guesses cannot all slip under the limit.
    const lock = await lockout.begin(clientIp, username);
    if (lock.locked) return this.refuse({ result: 'locked', retryAfterMs: lock.retryAfterMs }, startedAt);

    const found = users.find(username);
    // An unknown name costs scrypt work as a known one does; the failure delay evens out the rest.
    const cached = found !== undefined && cache?.matches(username, found.passwordHash, password) === true;
    const valid = cached || (found ? await verifyPassword(password, found.passwordHash) : await verifyAgainstDummy(password));
    if (!found || !valid) {
      await lockout.failed(clientIp, username);
      return this.refuse({ result: 'invalid' }, startedAt);
    }
    if (!cached) cache?.remember(username, found.passwordHash, password);
    await lockout.succeeded(clientIp, username);
    return { result: 'success', user: found.user };
  }

  /** Answer a refusal no earlier than the failure delay (plus jitter) after `startedAt`; never longer on top of it. */
  private async refuse<T extends AuthOutcome>(outcome: T, startedAt: number): Promise<T> {
    const target = this.deps.failureDelayMs * (1 + FAILURE_DELAY_JITTER * this.random());
    const remaining = target - (this.clock.now() - startedAt);
    if (remaining > 0) await this.sleep(Math.ceil(remaining));
    return outcome;
  }
}
