/**
 * The resolver on real packages: `.deb` files built with `dpkg-deb --build`, indexed by
 * `apt-ftparchive packages`, and the chosen sets handed to dpkg itself (`dpkg --root --install`
 * into an empty database), which refuses any unmet dependency or conflict.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseParagraphs } from "../../src/debian/control.js";
import { packageFromParagraph } from "../../src/debian/package.js";
import { resolvePackages } from "../../src/debian/resolver.js";
import type { BinaryPackage } from "../../src/debian/types.js";
import { isKilnError } from "../../src/domain/errors.js";
import { buildDeb, removeDir, tempDir, type DebSpec } from "../fixtures/debs.js";

const dir = tempDir("kiln-resolver-");
let universe: BinaryPackage[] = [];

const SPECS: DebSpec[] = [
  { name: "app", version: "1.0", depends: "libfoo (>= 2)" },
  { name: "libfoo", version: "1.4" },
  { name: "libbar", version: "1.0" },
  { name: "libbar", version: "2.0" },
  { name: "libbar", version: "3.0", arch: "all" },
  { name: "needs-old", version: "1", depends: "libbar (<< 3)" },
  { name: "alt-user", version: "1", depends: "missing-x | libbar" },
  { name: "mail-user", version: "1", depends: "mail-transport-agent" },
  { name: "exim-lite", version: "4", provides: "mail-transport-agent", conflicts: "mail-transport-agent", fields: { Priority: "optional" } },
  { name: "postfix-lite", version: "3", provides: "mail-transport-agent", conflicts: "mail-transport-agent", fields: { Priority: "important" } },
  { name: "abi-user", version: "1", depends: "libabi (>= 2)" },
  { name: "abi-old", version: "1", provides: "libabi (= 1.0)" },
  { name: "abi-impl", version: "1", provides: "libabi (= 2.5)" },
  { name: "conf-user", version: "1", depends: "impl-a | impl-b, tool" },
  { name: "impl-a", version: "1", breaks: "tool (<< 3)" },
  { name: "impl-b", version: "1" },
  { name: "tool", version: "2.0" },
  { name: "py-tool", version: "1", fields: { "Pre-Depends": "pyrt:any" } },
  { name: "pyrt", version: "3.11", fields: { "Multi-Arch": "allowed" } },
  { name: "strict-tool", version: "1", depends: "plainrt:any" },
  { name: "plainrt", version: "1" },
  { name: "broken-app", version: "1", depends: "nowhere" },
  { name: "i386-only", version: "1", arch: "i386" },
];

beforeAll(() => {
  const pool = path.join(dir, "pool");
  mkdirSync(pool);
  for (const spec of SPECS) buildDeb({ compression: "none", ...spec }, pool);
  const index = execFileSync("apt-ftparchive", ["packages", "pool"], { cwd: dir, encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] });
  universe = parseParagraphs(index).map((p) => packageFromParagraph(p));
});
afterAll(() => removeDir(dir));

function resolve(names: string[], u: readonly BinaryPackage[] = universe): BinaryPackage[] {
  return resolvePackages(u, { names, arch: "amd64" });
}

function failure(names: string[]): string {
  try {
    resolve(names);
  } catch (err) {
    expect(isKilnError(err, "resolveFailed")).toBe(true);
    return (err as Error).message;
  }
  throw new Error("expected the resolution to fail");
}

/**
 * Installs packages, in the given order, into an empty dpkg database; dpkg refuses unmet
 * dependencies and conflicts. A package with Pre-Depends starts a new dpkg run, since dpkg wants
 * its pre-dependencies configured before it unpacks it — which also checks they come first.
 */
function dpkgInstall(pkgs: readonly BinaryPackage[]): { ok: boolean; output: string } {
  const root = tempDir("kiln-dpkg-root-");
  try {
    mkdirSync(path.join(root, "var/lib/dpkg/info"), { recursive: true });
    mkdirSync(path.join(root, "var/lib/dpkg/updates"), { recursive: true });
    writeFileSync(path.join(root, "var/lib/dpkg/status"), "");
    writeFileSync(path.join(root, "var/lib/dpkg/available"), "");
    const batches: BinaryPackage[][] = [[]];
    for (const p of pkgs) {
      if (p.preDepends.length > 0 && batches[batches.length - 1]!.length > 0) batches.push([]);
      batches[batches.length - 1]!.push(p);
    }
    let output = "";
    for (const batch of batches) {
      const debs = batch.map((p) => path.join(dir, p.filename!));
      const r = spawnSync("dpkg", [`--root=${root}`, "--force-script-chrootless", "--log=/dev/null", "--install", ...debs], { encoding: "utf8" });
      output += `${r.stdout}${r.stderr}`;
      if (r.status !== 0) return { ok: false, output };
    }
    return { ok: true, output };
  } finally {
    removeDir(root);
  }
}

function labels(pkgs: readonly BinaryPackage[]): string[] {
  return pkgs.map((p) => `${p.name}=${p.version}`);
}

describe("resolving packages built with dpkg-deb and indexed by apt-ftparchive", () => {
  it("indexes every package, with the SHA256 and Size the repository client verifies", () => {
    expect(universe).toHaveLength(SPECS.length);
    for (const p of universe) {
      expect(p.sha256).toMatch(/^[0-9a-f]{64}$/);
      expect(p.size).toBeGreaterThan(0);
      expect(p.filename).toMatch(/^pool\/.*\.deb$/);
    }
  });

  it("chooses versions, alternatives, providers and :any packages that dpkg accepts together", () => {
    const chosen = resolve(["needs-old", "alt-user", "mail-user", "abi-user", "conf-user", "py-tool"]);
    expect(labels(chosen).sort()).toEqual(
      ["abi-impl=1", "abi-user=1", "alt-user=1", "conf-user=1", "impl-b=1", "libbar=2.0", "mail-user=1", "needs-old=1", "postfix-lite=3", "py-tool=1", "pyrt=3.11", "tool=2.0"].sort(),
    );
    const installed = dpkgInstall(chosen);
    expect(installed.output).not.toMatch(/dependency problems|conflicting packages|breaks/i);
    expect(installed.ok).toBe(true);
  });

  it("puts every package after the packages it depends on", () => {
    const chosen = resolve(["conf-user", "py-tool", "abi-user"]);
    const position = new Map(chosen.map((p, i) => [p.name, i]));
    for (const p of chosen) {
      for (const group of [...p.preDepends, ...p.depends]) {
        const met = chosen.filter((q) => group.some((r) => r.name === q.name || q.provides.some((v) => v.name === r.name)));
        expect(met.length).toBeGreaterThan(0);
        expect(Math.min(...met.map((q) => position.get(q.name)!))).toBeLessThan(position.get(p.name)!);
      }
    }
  });

  it("gives the same answer for the index in any order", () => {
    const expected = labels(resolve(["mail-user", "conf-user", "alt-user"]));
    for (let seed = 1; seed <= 5; seed++) {
      const shuffled = [...universe].sort((a, b) => ((a.sha256! + seed) < (b.sha256! + seed) ? -1 : 1) * (seed % 2 === 0 ? 1 : -1));
      expect(labels(resolve(["mail-user", "conf-user", "alt-user"], shuffled))).toEqual(expected);
    }
  });

  it("fails with the chain for an unsatisfiable version — and dpkg agrees it cannot be installed", () => {
    expect(failure(["app"])).toBe("cannot install app: app 1.0 depends on libfoo (>= 2) but only 1.4 is available");
    const naive = dpkgInstall(universe.filter((p) => p.name === "app" || p.name === "libfoo"));
    expect(naive.ok).toBe(false);
    expect(naive.output).toContain("app depends on libfoo (>= 2)");
  });

  it("fails for a missing dependency, a foreign architecture and a non-allowed :any", () => {
    expect(failure(["broken-app"])).toBe("cannot install broken-app: broken-app 1 depends on nowhere, which no package provides");
    expect(failure(["i386-only"])).toBe("cannot install i386-only: i386-only exists only for i386, not amd64");
    expect(failure(["strict-tool"])).toBe("cannot install strict-tool: strict-tool 1 depends on plainrt:any but plainrt 1 is not Multi-Arch: allowed, so it cannot satisfy plainrt:any");
  });

  it("refuses two providers that conflict on their virtual name — as dpkg does", () => {
    expect(failure(["exim-lite", "postfix-lite"])).toBe("cannot install postfix-lite: postfix-lite 3 conflicts with exim-lite 4 (requested)");
    const both = dpkgInstall(universe.filter((p) => p.name === "exim-lite" || p.name === "postfix-lite"));
    expect(both.ok).toBe(false);
    expect(both.output).toMatch(/conflicting packages/);
  });

  it("avoids a Breaks by backtracking, where choosing naively gives a set dpkg refuses", () => {
    const chosen = resolve(["conf-user"]);
    expect(labels(chosen)).toEqual(["impl-b=1", "tool=2.0", "conf-user=1"]);
    const naive = dpkgInstall(universe.filter((p) => ["tool", "impl-a", "conf-user"].includes(p.name)));
    expect(naive.ok).toBe(false);
    expect(naive.output).toMatch(/impl-a \(1\) breaks tool \(<< 3\)/);
    expect(dpkgInstall(chosen).ok).toBe(true);
  });
});
