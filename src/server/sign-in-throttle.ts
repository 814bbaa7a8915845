/**
 * Slows password guessing, for every way of signing in with a password (HTTP Basic today, the
 * console's sign-in form): after a handful of wrong passwords for one login, or from one client
 * address, further attempts are refused with `429 Too Many Requests` and `Retry-After` for a
 * while that doubles with each failure — up to a bound, so that nobody is locked out for long.
 *
 *   attempt(login, address)   refuses (429) while either is held back; counts the attempt as a
 *                             failure until it is known to have succeeded
 *   succeeded(login, address) clears the login's count; the address becomes one this login
 *                             signed in from
 *   check(login, address)     refuses while held back, counting nothing (a remembered login)
 *   unchecked(login, address) the password could not be checked (the database did not answer):
 *                             the attempt counts as nothing
 *
 * An attacker guessing alice's password from elsewhere holds back attempts for alice, but not
 * from the addresses alice has signed in from: the real user keeps getting in. Counting an
 * attempt before the password is checked means that guesses sent all at once are held back too.
 * Unknown logins count like real ones, so the answers do not tell which logins exist. State is
 * in memory, bounded, and forgotten after a quiet period.
 */
import { KilnError } from "../domain/errors.js";

/** How one kind of counter (per login, per address) holds back. */
export interface HoldPolicy {
  /** Failures allowed before any hold. */
  free: number;
  /** The first hold; each further failure doubles it. */
  firstHoldMs: number;
  /** The longest hold. */
  maxHoldMs: number;
}

export interface SignInThrottleOptions {
  perLogin?: HoldPolicy;
  perAddress?: HoldPolicy;
  /** Failures older than this (counted from the last one) are forgotten. */
  forgetAfterMs?: number;
  /** How long an address stays one a login signed in from. */
  knownAddressMs?: number;
  /** Entries kept per table at most (the oldest go first). */
  capacity?: number;
  now?: () => number;
}

/** Five wrong passwords for one login are free; then 1 s, 2 s, ... at most 30 s between tries. */
export const PER_LOGIN: HoldPolicy = { free: 5, firstHoldMs: 1000, maxHoldMs: 30_000 };
/** An address may get twenty wrong (over any logins) before it is held back, for at most 2 minutes. */
export const PER_ADDRESS: HoldPolicy = { free: 20, firstHoldMs: 1000, maxHoldMs: 120_000 };

interface Counter {
  failures: number;
  last: number;
  heldUntil: number;
}

/** A Map that forgets its oldest entries beyond a size. */
class Bounded<V> extends Map<string, V> {
  constructor(private readonly capacity: number) {
    super();
  }
  override set(key: string, value: V): this {
    super.delete(key);
    if (this.size >= this.capacity) super.delete(this.keys().next().value!);
    return super.set(key, value);
  }
}

export class SignInThrottle {
  private readonly perLogin: HoldPolicy;
  private readonly perAddress: HoldPolicy;
  private readonly forgetAfterMs: number;
  private readonly knownAddressMs: number;
  private readonly now: () => number;
  private readonly logins: Bounded<Counter>;
  private readonly addresses: Bounded<Counter>;
  /** `login address` → until when the address counts as one the login signed in from. */
  private readonly known: Bounded<number>;

  constructor(options: SignInThrottleOptions = {}) {
    this.perLogin = options.perLogin ?? PER_LOGIN;
    this.perAddress = options.perAddress ?? PER_ADDRESS;
    this.forgetAfterMs = options.forgetAfterMs ?? 15 * 60_000;
    this.knownAddressMs = options.knownAddressMs ?? 30 * 24 * 3_600_000;
    this.now = options.now ?? Date.now;
    const capacity = options.capacity ?? 50_000;
    this.logins = new Bounded(capacity);
    this.addresses = new Bounded(capacity);
    this.known = new Bounded(capacity);
  }

  /** Refuses with `429` while the login (unless from a known address) or the address is held back. */
  check(login: string, address: string): void {
    const now = this.now();
    const byAddress = this.live(this.addresses, address, now);
    if (byAddress && byAddress.heldUntil > now) throw held(`too many wrong passwords from your address`, byAddress.heldUntil - now);
    if (this.isKnown(login, address, now)) return;
    const byLogin = this.live(this.logins, fold(login), now);
    if (byLogin && byLogin.heldUntil > now) throw held(`too many wrong passwords for ${login}`, byLogin.heldUntil - now);
  }

  /** {@link check}, then counts the attempt as a failure until {@link succeeded} says otherwise. */
  attempt(login: string, address: string): void {
    this.check(login, address);
    const now = this.now();
    this.fail(this.addresses, address, this.perAddress, now);
    if (!this.isKnown(login, address, now)) this.fail(this.logins, fold(login), this.perLogin, now);
  }

  /** The password was right: the attempt was no failure, and the address is now known for the login. */
  succeeded(login: string, address: string): void {
    const now = this.now();
    this.logins.delete(fold(login));
    const byAddress = this.live(this.addresses, address, now);
    if (byAddress) {
      byAddress.failures = Math.max(0, byAddress.failures - 1);
      byAddress.heldUntil = holdUntil(byAddress, this.perAddress);
    }
    this.known.set(`${fold(login)} ${address}`, now + this.knownAddressMs);
  }

  /**
   * The attempt could not be checked (the store did not answer): it is no failure, so that an
   * outage of the database does not hold the real users back once it is over.
   */
  unchecked(login: string, address: string): void {
    const now = this.now();
    this.forgive(this.addresses, address, this.perAddress, now);
    if (!this.isKnown(login, address, now)) this.forgive(this.logins, fold(login), this.perLogin, now);
  }

  private forgive(table: Bounded<Counter>, key: string, policy: HoldPolicy, now: number): void {
    const c = this.live(table, key, now);
    if (!c) return;
    c.failures = Math.max(0, c.failures - 1);
    c.heldUntil = holdUntil(c, policy);
  }

  private isKnown(login: string, address: string, now: number): boolean {
    return (this.known.get(`${fold(login)} ${address}`) ?? 0) > now;
  }

  /** The counter under `key`, unless it has been quiet long enough to forget. */
  private live(table: Bounded<Counter>, key: string, now: number): Counter | undefined {
    const c = table.get(key);
    if (c && now - c.last > this.forgetAfterMs && c.heldUntil <= now) {
      table.delete(key);
      return undefined;
    }
    return c;
  }

  private fail(table: Bounded<Counter>, key: string, policy: HoldPolicy, now: number): void {
    const c = this.live(table, key, now) ?? { failures: 0, last: now, heldUntil: 0 };
    c.failures++;
    c.last = now;
    c.heldUntil = holdUntil(c, policy);
    table.set(key, c);
  }
}

function holdUntil(c: Counter, policy: HoldPolicy): number {
  const over = c.failures - policy.free;
  if (over <= 0) return 0;
  return c.last + Math.min(policy.maxHoldMs, policy.firstHoldMs * 2 ** Math.min(over - 1, 30));
}

/** Logins are unique whatever their case: so are their counters. */
function fold(login: string): string {
  return login.toLowerCase();
}

function held(what: string, ms: number): KilnError {
  const seconds = Math.max(1, Math.ceil(ms / 1000));
  return new KilnError("tooManyRequests", `${what}: try again in ${seconds} s`, { headers: { "Retry-After": String(seconds) } });
}
