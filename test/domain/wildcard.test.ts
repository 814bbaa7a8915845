import { describe, expect, it } from "vitest";
import { Wildcard, type MatchSteps } from "../../src/domain/wildcard.js";

/** The obvious dynamic programme over (pattern, text) positions: slow, but surely right. */
function reference(pattern: string, text: string): boolean {
  const p = pattern.toLowerCase();
  const t = text.toLowerCase();
  let row = new Array<boolean>(t.length + 1).fill(false);
  row[0] = true;
  for (const c of p) {
    const next = new Array<boolean>(t.length + 1).fill(false);
    if (c === "*") {
      next[0] = row[0]!;
      for (let j = 1; j <= t.length; j++) next[j] = next[j - 1]! || row[j]!;
    } else {
      for (let j = 1; j <= t.length; j++) next[j] = row[j - 1]! && t[j - 1] === c;
    }
    row = next;
  }
  return row[t.length]!;
}

/** A small deterministic generator, so that a failure can be replayed. */
function lcg(seed: number): () => number {
  let s = seed;
  return () => (s = (s * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
}

describe("wildcard matching", () => {
  it.each([
    ["12*", "12", true],
    ["12*", "12.4", true],
    ["1*", "bookworm", false],
    ["*", "", true],
    ["", "", true],
    ["", "x", false],
    ["deb*an", "DEBIAN", true],
    ["*b*b*", "abab", true],
    ["a*aa*a", "aaa", false],
    ["a*aa*a", "aaaa", true],
    ["*aab", "aaab", true],
    ["x86_64", "X86_64", true],
    ["x86.64", "x86_64", false],
  ])("matches %j against %j: %s", (pattern, text, expected) => {
    expect(new Wildcard(pattern).test(text)).toBe(expected);
  });

  it("agrees with the reference on thousands of random patterns", () => {
    const rnd = lcg(42);
    const word = (len: number, alphabet: string) => Array.from({ length: len }, () => alphabet[Math.floor(rnd() * alphabet.length)]).join("");
    for (let i = 0; i < 5000; i++) {
      const pattern = word(Math.floor(rnd() * 9), "aAb**");
      const text = word(Math.floor(rnd() * 12), "aab");
      expect(new Wildcard(pattern).test(text), `${pattern} against ${text}`).toBe(reference(pattern, text));
    }
  });

  it("does work linear in the text, whatever the stars of a 4,096-character rule", () => {
    const text = "a".repeat(100_000);
    const adversarial = [
      "*".repeat(4095) + "b", // a regex tries every way to share the text among the stars
      "*a".repeat(2047) + "*b",
      "a*".repeat(2047) + "ab",
      "*" + "a".repeat(4093) + "b*", // a piece that almost matches everywhere
      "*aaaaaaaab".repeat(409),
    ];
    for (const pattern of adversarial) {
      const count: MatchSteps = { steps: 0 };
      expect(new Wildcard(pattern).test(text, count)).toBe(false);
      expect(count.steps, pattern.slice(0, 20)).toBeLessThanOrEqual(2 * text.length + pattern.length);
    }
    const count: MatchSteps = { steps: 0 };
    expect(new Wildcard("*a".repeat(2047) + "*").test(text, count)).toBe(true);
    expect(count.steps).toBeLessThanOrEqual(2 * text.length + 4096);
  });
});
