/**
 * /bin/sh and /etc/shells, checked against debianutils' own update-shells and add-shell and
 * dpkg-divert run on a copy of the same tree.
 */
import { execFileSync } from "node:child_process";
import { cpSync, existsSync, mkdtempSync, readFileSync, readlinkSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, describe, expect, test } from "vitest";
import { binShFixup } from "../../../src/rootfs/fixups/bin-sh.js";
import { maintainerScriptsFixup, ScriptRun, type ScriptReportEntry } from "../../../src/rootfs/fixups/maintainer-scripts.js";
import { shellsFixup, updateShells } from "../../../src/rootfs/fixups/shells.js";
import { DirView, runFixups, syntheticContext } from "./dir-view.js";
import { syntheticPackage, tempTree } from "./synthetic.js";

const cleanup: string[] = [];
afterAll(() => {
  for (const d of cleanup) rmSync(d, { recursive: true, force: true });
});
function tree(nodes: Parameters<typeof tempTree>[0]): string {
  const t = tempTree(nodes);
  cleanup.push(t);
  return t;
}
function copy(root: string): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), "kiln-shells-"));
  cleanup.push(dir);
  cpSync(root, dir, { recursive: true, verbatimSymlinks: true });
  return dir;
}

const MERGED = { bin: { link: "usr/bin" }, "usr/bin/bash": "x", "usr/bin/zsh": "x", "usr/bin/dash": "x", "var/lib": { dir: true as const }, etc: { dir: true as const } };
const TEMPLATE = "# /etc/shells: valid login shells\n/bin/sh\n";

describe("/etc/shells", () => {
  test("first install: the same bytes as update-shells --root", async () => {
    const root = tree({
      ...MERGED,
      "usr/share/debianutils/shells": TEMPLATE,
      "usr/share/debianutils/shells.d/bash": "/bin/bash\n/bin/rbash\n",
      "usr/share/debianutils/shells.d/zsh": "/bin/zsh # the Z shell\n/usr/bin/zsh\n# comment line\n",
      "usr/share/debianutils/shells.d/dash": "/bin/dash\n",
    });
    const oracle = copy(root);
    execFileSync("update-shells", ["--root", oracle]);
    await runFixups(root, [shellsFixup()], syntheticContext([syntheticPackage({ name: "debianutils" })]));
    expect(readFileSync(path.join(root, "etc/shells"), "utf8")).toBe(readFileSync(path.join(oracle, "etc/shells"), "utf8"));
    expect(readFileSync(path.join(root, "var/lib/shells.state"), "utf8")).toBe(readFileSync(path.join(oracle, "var/lib/shells.state"), "utf8"));
    expect(readFileSync(path.join(root, "etc/shells"), "utf8")).toContain("/usr/bin/zsh\n");
  });

  test("an existing /etc/shells keeps local additions and loses shells no package ships any more", async () => {
    const root = tree({
      ...MERGED,
      "usr/share/debianutils/shells": TEMPLATE,
      "usr/share/debianutils/shells.d/bash": "/bin/bash\n",
      "etc/shells": "# mine\n/bin/sh\n/opt/my/shell\n/bin/oldsh\n/bin/bash\n",
      "var/lib/shells.state": "/bin/sh\n/bin/oldsh\n/bin/bash\n",
    });
    const oracle = copy(root);
    execFileSync("update-shells", ["--root", oracle]);
    await runFixups(root, [shellsFixup()], syntheticContext([syntheticPackage({ name: "debianutils" })]));
    expect(readFileSync(path.join(root, "etc/shells"), "utf8")).toBe(readFileSync(path.join(oracle, "etc/shells"), "utf8"));
    expect(readFileSync(path.join(root, "etc/shells"), "utf8")).not.toContain("oldsh");
    expect(readFileSync(path.join(root, "etc/shells"), "utf8")).toContain("/opt/my/shell");
  });

  test("add-shell calls of postinsts are appended as add-shell does", async () => {
    const root = tree({ ...MERGED, "usr/share/debianutils/shells": TEMPLATE, "usr/bin/fish": "x" });
    const oracle = copy(root);
    execFileSync("update-shells", ["--root", oracle]);
    execFileSync("add-shell", ["/bin/fish"], { env: { ...process.env, DPKG_ROOT: oracle } });
    const report: ScriptReportEntry[] = [];
    const fish = syntheticPackage({ name: "fish", members: { postinst: "#!/bin/sh\nset -e\nif [ \"$1\" = configure ]; then\n  add-shell /bin/fish\n  add-shell /usr/bin/$(uname -r)\nfi\n" } });
    const run = new ScriptRun("bookworm");
    await runFixups(root, [maintainerScriptsFixup(run, { report }), shellsFixup({ calls: run.calls })], syntheticContext([syntheticPackage({ name: "debianutils" }), fish]));
    expect(readFileSync(path.join(root, "etc/shells"), "utf8")).toBe(readFileSync(path.join(oracle, "etc/shells"), "utf8"));
    expect(report).toEqual([
      { package: "fish", script: "postinst", outcome: "emulated", effect: "add-shell /bin/fish" },
      { package: "fish", script: "postinst", outcome: "unreproduced", effect: expect.stringMatching(/^runs `add-shell \/usr\/bin\/\$\(uname -r\)`, whose arguments are not known at build time/) },
    ]);
  });

  test("updateShells keeps duplicate packaged shells the way the script does", () => {
    const r = updateShells("/bin/sh\n", ["/bin/sh", "/bin/x", "/bin/x"], []);
    expect(r).toEqual({ shells: "/bin/sh\n/bin/x\n/bin/x\n", state: "/bin/sh\n/bin/x\n/bin/x\n" });
  });
});

describe("/bin/sh", () => {
  test("with dash: the link and dash's diversions, as dpkg-divert lists them", async () => {
    const root = tree({ ...MERGED, "usr/share/man/man1/dash.1.gz": "x", "var/lib/dpkg": { dir: true } });
    // bookworm's postinst (claim_binsh) adds the diversions.
    const postinst = 'dpkg-divert --package dash --no-rename --divert $distrib --add $dfile\n';
    await runFixups(root, [binShFixup()], syntheticContext([syntheticPackage({ name: "dash", members: { postinst } }), syntheticPackage({ name: "bash" })]));
    expect(readlinkSync(path.join(root, "usr/bin/sh"))).toBe("dash");
    expect(readlinkSync(path.join(root, "usr/share/man/man1/sh.1.gz"))).toBe("dash.1.gz");
    const list = execFileSync("dpkg-divert", ["--admindir", path.join(root, "var/lib/dpkg"), "--list"]).toString().split("\n").filter(Boolean).sort();
    expect(list).toEqual(["diversion of /bin/sh to /bin/sh.distrib by dash", "diversion of /usr/share/man/man1/sh.1.gz to /usr/share/man/man1/sh.distrib.1.gz by dash"]);
    expect(execFileSync("dpkg-divert", ["--admindir", path.join(root, "var/lib/dpkg"), "--truename", "/bin/sh"]).toString().trim()).toBe("/bin/sh.distrib");
  });

  test("trixie's dash, whose postinst adds no diversion: its own /bin/sh link, no diversions", async () => {
    const root = tree({ ...MERGED, "usr/bin/sh": { link: "dash" }, "var/lib/dpkg": { dir: true } });
    const postinst = "claim_binsh() {\n\tdpkg-divert --package dash --no-rename --remove $dfile\n}\nclaim_binsh /bin/sh dash\n";
    await runFixups(root, [binShFixup()], syntheticContext([syntheticPackage({ name: "dash", members: { postinst } })]));
    expect(readlinkSync(path.join(root, "usr/bin/sh"))).toBe("dash");
    expect(existsSync(path.join(root, "var/lib/dpkg/diversions"))).toBe(false);
  });

  test("without dash, bash's postinst fallback; an existing /bin/sh is kept", async () => {
    const root = tree({ bin: { link: "usr/bin" }, "usr/bin/bash": "x" });
    await runFixups(root, [binShFixup()], syntheticContext([syntheticPackage({ name: "bash" })]));
    expect(readlinkSync(path.join(root, "usr/bin/sh"))).toBe("bash");
    const kept = tree({ ...MERGED, "usr/bin/sh": { link: "zsh" } });
    const r = await binShFixup().apply({ ...syntheticContext([syntheticPackage({ name: "bash" })]), fs: new DirView(kept) });
    expect(r.entries).toEqual([]);
  });
});
