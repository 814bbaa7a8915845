import { execFileSync } from "node:child_process";
import { describe, expect, it } from "vitest";
import { isKilnError } from "../../src/domain/errors.js";
import { compareVersions, isValidVersion, parseVersion, satisfiesVersion, versionError } from "../../src/debian/version.js";

/** Each row: a < b (policy 5.6.12 and dpkg's verrevcmp). */
const ASCENDING: Array<[string, string]> = [
  ["1.0~rc1", "1.0"],
  ["1.0~~", "1.0~~a"],
  ["1.0~~a", "1.0~"],
  ["1.0~", "1.0"],
  ["1.0", "1.0a"],
  ["1.0a", "1.0+"],
  ["1.0+", "1.0.1"],
  ["1.0", "1.0.0"],
  ["1.0-1", "1.0-1.1"],
  ["1.0-1", "1.0-2"],
  ["1.0-9", "1.0-10"],
  ["1.0", "1.0-1"],
  ["2.0", "10.0"],
  ["1.2", "1.10"],
  ["9.9.9", "1:0.1"],
  ["1:1.0", "2:0.1"],
  ["1.0", "1.0+b1"],
  ["1.0-1", "1.0-1+b1"],
  ["1.0-1+deb12u1", "1.0-1+deb12u2"],
  ["2.36-9+deb12u3", "2.36-9+deb12u10"],
  ["1.0-1~bpo12+1", "1.0-1"],
  ["1.0a", "1.0b"],
  ["1.0Z", "1.0a"],
  ["1.0-beta-1", "1.0-beta-2"],
  ["1.0.", "1.0.a"],
  ["0.9", "1.0~alpha"],
];

const EQUAL: Array<[string, string]> = [
  ["1.0", "1.0"],
  ["0:1.0", "1.0"],
  ["1.0", "1.0-0"],
  ["1.01", "1.1"],
  ["1.0-001", "1.0-1"],
  ["00:1.0", "1.0"],
];

describe("compareVersions", () => {
  it.each(ASCENDING)("%s < %s", (a, b) => {
    expect(compareVersions(a, b)).toBe(-1);
    expect(compareVersions(b, a)).toBe(1);
  });

  it.each(EQUAL)("%s = %s", (a, b) => {
    expect(compareVersions(a, b)).toBe(0);
    expect(compareVersions(b, a)).toBe(0);
  });

  it("sorts a list the way policy's example does", () => {
    const sorted = ["1.0", "1.0~rc1", "1.0+b1", "1:0.9", "1.0~~", "1.0-1", "0.9"].sort(compareVersions);
    expect(sorted).toEqual(["0.9", "1.0~~", "1.0~rc1", "1.0", "1.0-1", "1.0+b1", "1:0.9"]);
  });

  it("agrees with dpkg --compare-versions on a few hundred generated pairs", () => {
    // A seeded generator: the same pairs every run, many of them near misses.
    let seed = 0x2f6e2b1;
    const rand = (n: number) => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed % n;
    };
    const tokens = ["0", "1", "2", "9", "10", "01", "00", "a", "b", "z", "A", "Z", ".", "+", "~", "~~", "rc", "beta", "dfsg"];
    const part = (max: number) => Array.from({ length: 1 + rand(max) }, () => tokens[rand(tokens.length)]).join("");
    const version = () => {
      const epoch = rand(5) === 0 ? `${rand(3)}:` : "";
      const upstream = `${rand(12)}${part(5)}`;
      const revision = rand(2) === 0 ? `-${rand(4)}${rand(3) === 0 ? part(3) : ""}` : "";
      return `${epoch}${upstream}${revision}`;
    };
    const pairs: Array<[string, string]> = [];
    while (pairs.length < 300) {
      const a = version();
      // Most pairs differ by one small edit, where ordering mistakes hide; some are spelled
      // differently but equal (a zero epoch, leading zeros).
      const pick = rand(4);
      const b =
        pick === 0
          ? version()
          : pick === 1
            ? (a.includes(":") ? a : `0:${a}`).replace(/([^0-9]|^)([1-9])/, "$10$2")
            : a.replace(/[0-9a-z~+.]$/, tokens[rand(tokens.length)]!);
      if (isValidVersion(a) && isValidVersion(b)) pairs.push([a, b]);
    }
    const script = 'while read -r a b; do if dpkg --compare-versions "$a" lt "$b"; then echo -1; elif dpkg --compare-versions "$a" eq "$b"; then echo 0; else echo 1; fi; done';
    const out = execFileSync("bash", ["-c", script], { input: pairs.map(([a, b]) => `${a} ${b}`).join("\n") + "\n", encoding: "utf8" });
    const dpkg = out.trim().split("\n").map(Number);
    expect(dpkg).toHaveLength(pairs.length);
    const disagreements = pairs.filter(([a, b], i) => compareVersions(a, b) !== dpkg[i]).map(([a, b], i) => `${a} vs ${b}: dpkg ${dpkg[i]}`);
    expect(disagreements).toEqual([]);
    // The generator must produce all three outcomes, or the check proves little.
    expect(new Set(dpkg)).toEqual(new Set([-1, 0, 1]));
  });
});

describe("satisfiesVersion", () => {
  it("applies each relation operator", () => {
    expect(satisfiesVersion("1.4", ">=", "2")).toBe(false);
    expect(satisfiesVersion("2.0", ">=", "2")).toBe(true);
    expect(satisfiesVersion("2.0", ">>", "2")).toBe(true);
    expect(satisfiesVersion("2.0~", ">>", "2")).toBe(true);
    expect(satisfiesVersion("2", ">>", "2")).toBe(false);
    expect(satisfiesVersion("1.5~alpha4~", "<<", "1.5~alpha4")).toBe(true);
    expect(satisfiesVersion("1.0", "<=", "1.0")).toBe(true);
    expect(satisfiesVersion("1.0", "<<", "1.0")).toBe(false);
    expect(satisfiesVersion("0:1.0", "=", "1.0")).toBe(true);
    expect(satisfiesVersion("1.0-1", "=", "1.0")).toBe(false);
  });
});

describe("version validation (policy 5.6.12)", () => {
  it.each(["1.0", "1:2.3-4", "2.36-9+deb12u3", "1.0~rc1+dfsg-0.1~bpo1", "0", "1.0-beta-2", "3:1.2.3.4a+b~c-4.5+~"])("accepts %s", (v) => {
    expect(versionError(v)).toBeUndefined();
  });

  it.each([
    ["", "empty"],
    ["1.0 1", "embedded spaces"],
    [":1.0", "epoch is empty"],
    ["a:1.0", "epoch is not a number"],
    ["99999999999:1.0", "too big"],
    ["1:", "nothing follows"],
    ["1.0-", "revision is empty"],
    ["-1", "upstream version is empty"],
    ["a1.0", "does not start with a digit"],
    ["1.0_1", "character other than"],
    ["1.0-1_2", "revision has a character"],
    ["1:2:3", "character other than"],
  ])("refuses %j (%s)", (v, why) => {
    expect(versionError(v)).toContain(why);
    expect(isValidVersion(v)).toBe(false);
  });

  it("splits a version into epoch, upstream and revision", () => {
    expect(parseVersion("1:2.3-4-5")).toEqual({ epoch: 1, upstream: "2.3-4", revision: "5" });
    expect(parseVersion("2.3")).toEqual({ epoch: 0, upstream: "2.3", revision: "" });
    let caught: unknown;
    try {
      parseVersion("x");
    } catch (err) {
      caught = err;
    }
    expect(isKilnError(caught, "badRequest")).toBe(true);
    expect((caught as Error).message).toBe('invalid version "x": the upstream version does not start with a digit');
  });
});
