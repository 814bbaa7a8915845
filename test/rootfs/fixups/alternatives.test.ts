/**
 * The alternatives fix-up against dpkg's own update-alternatives (run with --root on a copy of
 * the same tree, as the oracle) and against a real debootstrap of the minbase packages.
 */
import { execFileSync } from "node:child_process";
import { cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { alternativesFixup, collectAlternatives, parseAlternativesCall } from "../../../src/rootfs/fixups/alternatives.js";
import { maintainerScriptsFixup, ScriptRun, type ScriptReportEntry } from "../../../src/rootfs/fixups/maintainer-scripts.js";
import { applyResult, DirView, runFixups, syntheticContext } from "./dir-view.js";
import { debootstrapReference, debootstrapTree, minbaseTree } from "./minbase.js";
import { syntheticPackage, tempTree } from "./synthetic.js";

const cleanup: string[] = [];
afterAll(() => {
  for (const d of cleanup) rmSync(d, { recursive: true, force: true });
});

/**
 * Runs the postinsts (through the maintainer-scripts interpreter, which records the calls) and
 * the alternatives fix-up, in a copy of `root`.
 */
async function ours(root: string, scripts: string[]): Promise<{ dir: string; warnings: string[]; report: ScriptReportEntry[] }> {
  const dir = mkdtempSync(path.join(os.tmpdir(), "kiln-alt-ours-"));
  cleanup.push(dir);
  cpSync(root, dir, { recursive: true, verbatimSymlinks: true });
  const warnings: string[] = [];
  const report: ScriptReportEntry[] = [];
  const packages = scripts.map((postinst, i) => syntheticPackage({ name: `p${i}`, members: { postinst } }));
  const run = new ScriptRun("bookworm");
  await runFixups(dir, [maintainerScriptsFixup(run, { report }), alternativesFixup({ calls: run.calls, warn: (m) => warnings.push(m) })], syntheticContext(packages));
  return { dir, warnings, report };
}

/** Runs dpkg's update-alternatives with the same calls in another copy. */
function theirs(root: string, calls: string[][]): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), "kiln-alt-dpkg-"));
  cleanup.push(dir);
  cpSync(root, dir, { recursive: true, verbatimSymlinks: true });
  mkdirSync(path.join(dir, "dev"), { recursive: true });
  for (const args of calls) {
    try {
      execFileSync("update-alternatives", ["--root", dir, "--log", "/dev/null", ...args], { stdio: "ignore" });
    } catch {
      // update-alternatives refuses some calls (missing path): the state stays as it was.
    }
  }
  rmSync(path.join(dir, "dev"), { recursive: true, force: true });
  return dir;
}

/** Every symlink and alternatives admin file under a tree, as "path -> target" / "path: content". */
function state(dir: string): string[] {
  const out: string[] = [];
  const walk = (rel: string): void => {
    for (const name of readdirSync(path.join(dir, rel), { withFileTypes: true })) {
      const p = path.join(rel, name.name);
      if (name.isSymbolicLink()) out.push(`${p} -> ${readlinkSync(path.join(dir, p))}`);
      else if (name.isDirectory()) walk(p);
      else if (p.startsWith("var/lib/dpkg/alternatives/")) out.push(`${p}:\n${readFileSync(path.join(dir, p), "utf8")}`);
    }
  };
  walk("");
  return out.sort();
}

const BASE = {
  "usr/bin/vim.basic": "#!/bin/sh\n",
  "usr/bin/vim.tiny": "#!/bin/sh\n",
  "usr/bin/nano": "#!/bin/sh\n",
  "usr/share/man/man1/vim.1.gz": "x",
  "usr/share/man/man1/nano.1.gz": "x",
  "etc/alternatives": { dir: true as const },
  "var/lib/dpkg/alternatives": { dir: true as const },
  bin: { link: "usr/bin" },
};

describe("alternatives on synthetic trees, compared with update-alternatives --root", () => {
  test("highest priority wins; slaves follow the chosen file; a missing slave file gets no link", async () => {
    const root = tempTree(BASE);
    cleanup.push(root);
    const calls = [
      ["--install", "/usr/bin/editor", "editor", "/bin/nano", "40", "--slave", "/usr/share/man/man1/editor.1.gz", "editor.1.gz", "/usr/share/man/man1/nano.1.gz"],
      ["--install", "/usr/bin/editor", "editor", "/usr/bin/vim.basic", "50", "--slave", "/usr/share/man/man1/editor.1.gz", "editor.1.gz", "/usr/share/man/man1/vim.1.gz", "--slave", "/usr/bin/ex", "ex", "/usr/bin/ex.missing"],
      ["--install", "/usr/bin/vi", "vi", "/usr/bin/vim.tiny", "10"],
    ];
    const scripts = calls.map((c) => `#!/bin/sh\nset -e\nupdate-alternatives ${c.map((w) => `'${w}'`).join(" ")}\n`);
    const mine = await ours(root, scripts);
    expect(state(mine.dir)).toEqual(state(theirs(root, calls)));
    expect(readlinkSync(path.join(mine.dir, "etc/alternatives/editor"))).toBe("/usr/bin/vim.basic");
    expect(mine.warnings).toEqual([]);
  });

  test("a tie keeps the choice installed first, as dpkg does", async () => {
    const root = tempTree(BASE);
    cleanup.push(root);
    const calls = [
      ["--install", "/usr/bin/vi", "vi", "/usr/bin/vim.tiny", "30"],
      ["--install", "/usr/bin/vi", "vi", "/usr/bin/vim.basic", "30"],
      ["--install", "/usr/bin/editor", "editor", "/usr/bin/vim.tiny", "30"],
      ["--install", "/usr/bin/editor", "editor", "/usr/bin/nano", "20"],
      ["--install", "/usr/bin/editor", "editor", "/usr/bin/vim.basic", "30"],
    ];
    const mine = await ours(root, [calls.map((c) => `update-alternatives ${c.join(" ")}`).join("\n")]);
    expect(state(mine.dir)).toEqual(state(theirs(root, calls)));
    expect(readlinkSync(path.join(mine.dir, "etc/alternatives/vi"))).toBe("/usr/bin/vim.tiny");
  });

  test("a later call for the same path replaces the choice and can rename the link", async () => {
    const root = tempTree(BASE);
    cleanup.push(root);
    const calls = [
      ["--install", "/usr/bin/vi", "vi", "/usr/bin/vim.tiny", "30", "--slave", "/usr/bin/view", "view", "/usr/bin/vim.tiny"],
      ["--install", "/usr/bin/vi", "vi", "/usr/bin/vim.basic", "20"],
      ["--install", "/usr/bin/vi2", "vi", "/usr/bin/vim.tiny", "10"],
    ];
    const mine = await ours(root, [calls.map((c) => `update-alternatives ${c.join(" ")}`).join("\n")]);
    expect(state(mine.dir)).toEqual(state(theirs(root, calls)));
  });

  test("a missing path or an occupied link is refused like dpkg does, and reported", async () => {
    const root = tempTree({ ...BASE, "usr/bin/pager": "a real file\n" });
    cleanup.push(root);
    const calls = [
      ["--install", "/usr/bin/ghost", "ghost", "/usr/bin/not-there", "10"],
      ["--install", "/usr/bin/pager", "pager", "/usr/bin/nano", "10"],
    ];
    const mine = await ours(root, [calls.map((c) => `update-alternatives ${c.join(" ")} || true`).join("\n")]);
    expect(state(mine.dir)).toEqual(state(theirs(root, calls)));
    expect(readFileSync(path.join(mine.dir, "usr/bin/pager"), "utf8")).toBe("a real file\n");
    expect(mine.warnings).toEqual([expect.stringContaining("alternative path /usr/bin/not-there doesn't exist"), expect.stringContaining("not replacing /usr/bin/pager with a link")]);
  });

  test("words computed by the script (a loop over a static list) are replayed like the shell runs them", async () => {
    const root = tempTree(BASE);
    cleanup.push(root);
    const script = `#!/bin/sh\nset -e\nprio=10\nfor e in vim.tiny vim.basic; do\n  update-alternatives --install /usr/bin/vi vi /usr/bin/$e $prio\n  prio=$((prio + 10))\ndone\n`;
    const mine = await ours(root, [script]);
    const calls = [
      ["--install", "/usr/bin/vi", "vi", "/usr/bin/vim.tiny", "10"],
      ["--install", "/usr/bin/vi", "vi", "/usr/bin/vim.basic", "20"],
    ];
    expect(state(mine.dir)).toEqual(state(theirs(root, calls)));
    expect(readlinkSync(path.join(mine.dir, "etc/alternatives/vi"))).toBe("/usr/bin/vim.basic");
  });

  test("calls whose words depend on the running system are reported, not guessed", async () => {
    const root = tempTree(BASE);
    cleanup.push(root);
    const mine = await ours(root, [`#!/bin/sh\nupdate-alternatives --install /usr/bin/vi vi /usr/bin/$(uname -r) 10\nupdate-alternatives --set editor /usr/bin/nano\n`]);
    expect(state(mine.dir).filter((s) => s.includes("alternatives"))).toEqual([]);
    expect(mine.report.filter((r) => r.outcome === "unreproduced").map((r) => r.effect)).toEqual([
      expect.stringMatching(/^runs `update-alternatives --install \/usr\/bin\/vi vi \/usr\/bin\/\$\(uname -r\) 10`, whose arguments are not known at build time/),
    ]);
    expect(mine.warnings).toEqual([expect.stringContaining("update-alternatives --set not replayed")]);
  });
});

describe("parseAlternativesCall", () => {
  test("applies update-alternatives' argument checks", () => {
    expect(parseAlternativesCall(["update-alternatives", "--install", "usr/bin/x", "x", "/x", "1"]).error).toMatch(/not absolute/);
    expect(parseAlternativesCall(["update-alternatives", "--install", "/usr/bin/x", "a/b", "/x", "1"]).error).toMatch(/must not contain/);
    expect(parseAlternativesCall(["update-alternatives", "--install", "/usr/bin/x", "x", "/x", "high"]).error).toMatch(/integer/);
    expect(parseAlternativesCall(["update-alternatives", "--install", "/usr/bin/x", "x", "/x", "1", "--slave", "/usr/bin/x", "y", "/y"]).error).toMatch(/both primary and slave/);
    expect(parseAlternativesCall(["update-alternatives", "--install", "/usr/bin/x", "x", "/../etc/shadow", "1"]).error).toMatch(/not a safe path/);
    expect(parseAlternativesCall(["update-alternatives", "--altdir", "/tmp", "--install", "/usr/bin/x", "x", "/x", "1"]).error).toMatch(/--altdir/);
    expect(parseAlternativesCall(["update-alternatives", "--slave", "/a", "a", "/b"]).error).toMatch(/only allowed with --install/);
    expect(parseAlternativesCall(["update-alternatives", "--quiet", "--install", "/usr/bin/x", "x", "/x", "-5"]).install).toEqual({ link: "/usr/bin/x", name: "x", path: "/x", priority: -5, slaves: [] });
  });
});

describe("alternatives of the real minbase packages", () => {
  let root: string;
  let ref: string;
  let warnings: string[];
  beforeAll(async () => {
    ref = debootstrapTree();
    const tree = minbaseTree();
    root = tree.root;
    cleanup.push(root, ref);
    warnings = [];
    const run = new ScriptRun("bookworm");
    await runFixups(root, [maintainerScriptsFixup(run)], syntheticContext(tree.packages));
    const ctx = { ...syntheticContext(tree.packages), fs: new DirView(root) };
    expect(collectAlternatives(run.calls.alternatives, ctx.fs, () => {}).map((g) => g.name).sort()).toEqual(readdirSync(path.join(ref, "var/lib/dpkg/alternatives")).sort());
    await applyResult(root, await alternativesFixup({ calls: run.calls, warn: (m) => warnings.push(m) }).apply(ctx));
  });

  test("admin files are byte-identical to debootstrap's", () => {
    for (const name of readdirSync(path.join(ref, "var/lib/dpkg/alternatives"))) {
      expect(readFileSync(path.join(root, "var/lib/dpkg/alternatives", name), "utf8"), name).toBe(readFileSync(path.join(ref, "var/lib/dpkg/alternatives", name), "utf8"));
    }
    expect(warnings).toEqual([]);
  });

  test("the link farm matches debootstrap's: /etc/alternatives and every link to it", () => {
    const links = (dir: string): string[] =>
      execFileSync("find", [".", "-path", "./proc", "-prune", "-o", "-type", "l", "-lname", "/etc/alternatives/*", "-printf", "%p %l\\n", "-o", "-path", "./etc/alternatives/*", "-type", "l", "-printf", "%p %l\\n"], { cwd: dir })
        .toString()
        .split("\n")
        .filter(Boolean)
        .sort();
    expect(links(root).length).toBeGreaterThan(20);
    expect(links(root)).toEqual(linksOfReference());
  });

  test("update-alternatives reads what we wrote: awk is mawk in auto mode", () => {
    const out = execFileSync("update-alternatives", ["--root", root, "--display", "awk"]).toString();
    expect(out).toContain("awk - auto mode");
    expect(out).toContain("link currently points to /usr/bin/mawk");
    expect(out).toContain("slave nawk: /usr/bin/mawk");
    expect(execFileSync("update-alternatives", ["--root", root, "--query", "pager"]).toString()).toMatch(/Value: \/bin\/more/);
  });
});

/** The alternative links of the debootstrap reference, from its listing. */
function linksOfReference(): string[] {
  return readFileSync(debootstrapReference().listing, "utf8")
    .split("\n")
    .map((l) => l.split(" "))
    .filter((f) => f[1] === "l" && (f[4]!.startsWith("/etc/alternatives/") || f[0]!.startsWith("./etc/alternatives/")))
    .map((f) => `${f[0]} ${f[4]}`)
    .sort();
}
