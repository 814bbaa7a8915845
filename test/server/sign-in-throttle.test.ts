/**
 * The sign-in throttle on its own clock: how long wrong passwords are held back, per login and
 * per address, that the hold ends and is bounded, that guesses sent at once are held back too,
 * and that the real user keeps getting in from where they signed in before.
 */
import { describe, expect, it } from "vitest";
import { isKilnError, type KilnError } from "../../src/domain/errors.js";
import { SignInThrottle } from "../../src/server/sign-in-throttle.js";

function clock(): { now: () => number; advance: (ms: number) => void } {
  let t = 1_000_000;
  return { now: () => t, advance: (ms) => void (t += ms) };
}

/** The error `fn` throws, or undefined. */
function refusal(fn: () => void): KilnError | undefined {
  try {
    fn();
    return undefined;
  } catch (err) {
    if (isKilnError(err, "tooManyRequests")) return err;
    throw err;
  }
}

describe("the sign-in throttle", () => {
  it("lets five wrong passwords through, then holds the login back for a doubling, bounded while", () => {
    const c = clock();
    const t = new SignInThrottle({ now: c.now });
    for (let i = 0; i < 5; i++) expect(refusal(() => t.attempt("alice", `10.0.0.${i}`))).toBeUndefined();
    // The sixth attempt runs (and counts); the seventh must wait.
    expect(refusal(() => t.attempt("alice", "10.0.0.9"))).toBeUndefined();
    const first = refusal(() => t.attempt("alice", "10.0.1.1"))!;
    expect(first.status).toBe(429);
    expect(first.headers["Retry-After"]).toBe("1");
    expect(first.message).toBe("too many wrong passwords for alice: try again in 1 s");
    // Logins are one whatever their case.
    expect(refusal(() => t.check("ALICE", "10.0.1.1"))).toBeDefined();
    const holds: number[] = [];
    for (let i = 0; i < 12; i++) {
      const r = refusal(() => t.attempt("alice", "10.0.2.1"))!;
      const wait = Number(r.headers["Retry-After"]);
      holds.push(wait);
      c.advance(wait * 1000);
      expect(refusal(() => t.attempt("alice", "10.0.2.1"))).toBeUndefined();
    }
    expect(holds.slice(0, 5)).toEqual([1, 2, 4, 8, 16]);
    expect(Math.max(...holds)).toBe(30);
    // Another login is not affected.
    expect(refusal(() => t.attempt("bob", "10.0.2.1"))).toBeUndefined();
  });

  it("holds guesses sent all at once: an attempt counts before its password is checked", () => {
    const t = new SignInThrottle({ now: clock().now });
    const outcomes = Array.from({ length: 10 }, (_, i) => refusal(() => t.attempt("carol", `192.0.2.${i}`)));
    expect(outcomes.filter((o) => o === undefined)).toHaveLength(6);
  });

  it("lets the real user in from an address they signed in from, while guesses from elsewhere are held back", () => {
    const c = clock();
    const t = new SignInThrottle({ now: c.now });
    t.attempt("dave", "198.51.100.7");
    t.succeeded("dave", "198.51.100.7");
    for (let i = 0; i < 30; i++) {
      refusal(() => t.attempt("dave", "203.0.113.66"));
      c.advance(100);
    }
    expect(refusal(() => t.attempt("dave", "203.0.113.99"))?.message).toMatch(/for dave/);
    expect(refusal(() => t.attempt("dave", "198.51.100.7"))).toBeUndefined();
    t.succeeded("dave", "198.51.100.7");
  });

  it("holds an address back after twenty wrong passwords over any logins, and clears a login on success", () => {
    const c = clock();
    const t = new SignInThrottle({ now: c.now });
    for (let i = 0; i < 21; i++) expect(refusal(() => t.attempt(`user${i}`, "203.0.113.5"))).toBeUndefined();
    const r = refusal(() => t.attempt("someone", "203.0.113.5"))!;
    expect(r.message).toBe("too many wrong passwords from your address: try again in 1 s");
    expect(refusal(() => t.attempt("someone", "203.0.113.6"))).toBeUndefined();

    for (let i = 0; i < 6; i++) t.attempt("erin", "192.0.2.1");
    c.advance(1000);
    t.attempt("erin", "192.0.2.1");
    t.succeeded("erin", "192.0.2.1");
    expect(refusal(() => t.attempt("erin", "192.0.2.2"))).toBeUndefined();
  });

  it("forgets failures after a quiet quarter of an hour", () => {
    const c = clock();
    const t = new SignInThrottle({ now: c.now });
    for (let i = 0; i < 6; i++) t.attempt("frank", "192.0.2.1");
    expect(refusal(() => t.check("frank", "192.0.2.1"))).toBeDefined();
    c.advance(16 * 60_000);
    for (let i = 0; i < 6; i++) expect(refusal(() => t.attempt("frank", "192.0.2.1"))).toBeUndefined();
  });

  it("counts nothing for attempts that could not be checked (the database was down)", () => {
    const t = new SignInThrottle({ now: clock().now });
    for (let i = 0; i < 30; i++) {
      expect(refusal(() => t.attempt("grace", "192.0.2.7"))).toBeUndefined();
      t.unchecked("grace", "192.0.2.7");
    }
    // Held back only by real failures, as if the outage had not happened.
    for (let i = 0; i < 6; i++) expect(refusal(() => t.attempt("grace", "192.0.2.7"))).toBeUndefined();
    expect(refusal(() => t.attempt("grace", "192.0.2.7"))).toBeDefined();
  });
});
