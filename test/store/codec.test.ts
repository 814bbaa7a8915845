/**
 * How database errors reach users: PostgreSQL's errors as the pg driver raises them, translated.
 * The soak (bench/soak.mjs) met a system error (class 58) right after the database crashed and
 * restarted: it must say "unreachable, try again" (503), not "internal error" (500).
 */
import pg from "pg";
import { describe, expect, it } from "vitest";
import { isKilnError } from "../../src/domain/errors.js";
import { translateDbError } from "../../src/store/codec.js";

function pgError(code: string, message: string): Error {
  const err = new pg.DatabaseError(message, message.length, "error");
  err.code = code;
  return err;
}

describe("translating database errors", () => {
  it.each([
    ["58P01", 'could not open shared memory segment "/PostgreSQL.1527962420": No such file or directory'],
    ["58030", "could not read block 0 in file base/16384/2619: read only 0 of 8192 bytes"],
    ["57P01", "terminating connection due to administrator command"],
  ])("answers %s with 503 and Retry-After, without the server's text", (code, message) => {
    const out = translateDbError(pgError(code, message));
    expect(isKilnError(out, "unavailable"), String(out)).toBe(true);
    const kiln = out as { status: number; message: string; headers: Record<string, string> };
    expect(kiln.status).toBe(503);
    expect(kiln.message).toMatch(/^the metadata database is unreachable \(.+\); try again in a moment$/);
    expect(kiln.message).not.toContain("PostgreSQL.");
    expect(kiln.headers["Retry-After"]).toBeDefined();
  });

  it("still answers a constraint violation as the client's conflict", () => {
    expect(isKilnError(translateDbError(pgError("23505", "duplicate key")), "conflict")).toBe(true);
  });
});
