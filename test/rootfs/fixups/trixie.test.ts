/**
 * Debian 13 (trixie) minbase built by Kiln — the real `kiln build`, with the trixie fix-ups and
 * study — against `mmdebstrap --mode=root --variant=minbase --include=apt trixie` of the same
 * local mirror, which ran every maintainer script. Compared path by path the way the fidelity
 * harness does (bench/fidelity/compare.mjs: type, mode, owner, link target, content, xattrs;
 * dpkg's status and available files per harmless.json): every difference must be in a harmless
 * category (each named with its reason) or explained by the build report; then the tree is used,
 * inside a chroot, as a user would: /bin/sh, dpkg --audit, apt-get check, apt-get update and
 * apt-cache policy from the mirror.
 */
import { execFileSync } from "node:child_process";
import { readFileSync, rmSync } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { classify, compareTrees, loadHarmless, scanTree } from "../../../bench/fidelity/compare.mjs";
import { pathsFor, studyFor } from "../../../src/rootfs/fixups/study/index.js";
import { inChroot } from "../../helpers/chroot.js";
import { minbaseList, ROOT, TRIXIE_MIRROR_DIR } from "../../helpers/global-setup.js";
import { kilnTree, mountPoints, referenceTree, TRIXIE } from "../../helpers/scripted-image.js";

interface Report {
  packages: Array<{ name: string; version: string }>;
  scripts: Array<{ package: string; script: string; outcome: string; effect: string }>;
}

let ref: string;
let ours: string;
let report: Report;
const cleanup: string[] = [];
const shmMountsBefore = mountPoints().filter((m) => m === "/dev/shm").length;

beforeAll(async () => {
  const [r, k] = await Promise.all([referenceTree(TRIXIE, [], "trixie"), kilnTree(TRIXIE, [], "trixie")]);
  ref = r;
  ours = k.root;
  cleanup.push(ref, ours);
  report = JSON.parse(readFileSync(k.report, "utf8")) as Report;
}, 1_800_000);
afterAll(() => {
  for (const d of cleanup) rmSync(d, { recursive: true, force: true });
});

describe("trixie minbase: Kiln's tree against mmdebstrap's", () => {
  test("mmdebstrap left nothing mounted: not under its target, no extra tmpfs on /dev/shm", () => {
    const mine = [path.join(ROOT, ".cache/trixie-reference"), ref, ours];
    expect(mountPoints().filter((m) => mine.some((d) => m === d || m.startsWith(`${d}/`)))).toEqual([]);
    expect(mountPoints().filter((m) => m === "/dev/shm").length).toBe(shmMountsBefore);
  });

  test("the same 78 packages at the same versions", () => {
    const pkgs = (root: string): string[] =>
      execFileSync("dpkg-query", [`--admindir=${path.join(root, "var/lib/dpkg")}`, "-W", "-f", "${Package} ${Version}\\n"], { encoding: "utf8" }).trim().split("\n").sort();
    expect(pkgs(ours)).toEqual(pkgs(ref));
    expect(pkgs(ours).map((l) => l.split(" ")[0])).toEqual([...minbaseList("trixie")].sort());
    expect(report.packages.length).toBe(78);
  });

  test("every difference of the trees is harmless (named, with its reason) or explained by the report: 0 unexplained", () => {
    const diffs = compareTrees(scanTree(ref), scanTree(ours));
    const sorted = classify(diffs, report, (e) => pathsFor(studyFor("trixie"), e.package, e.effect));
    expect(sorted.unexplained.map((d) => `${d.path}: ${d.kind}`)).toEqual([]);
    // What is accepted, by category: each is in harmless.json with its reason.
    const reasons = new Map(loadHarmless().categories.map((c) => [c.name, c.reason]));
    const used = [...new Set(sorted.harmless.map((d) => d.category))].sort();
    expect(used.every((c) => (reasons.get(c) ?? "").length > 40)).toBe(true);
    expect(used).toEqual(["apt lists and caches", "apt sources", "backups", "build host identity", "debconf cache", "device nodes", "dselect's files", "locks", "service enablement"]);
    // Nothing is explained away by an unreproduced effect: tzdata's `date` calls print the time
    // and leave no path (the report's only unreproduced entries).
    expect(sorted.explained).toEqual([]);
    const unreproduced = report.scripts.filter((e) => e.outcome === "unreproduced").map((e) => `${e.package} ${e.script}: ${e.effect}`);
    expect(unreproduced).toEqual(["tzdata postinst: runs `date`, which Kiln does not know", "tzdata postinst: runs `date -d ''`, which Kiln does not know"]);
    // The comparison has something to compare: the whole tree, dpkg's database included (its
    // status file record by record but for the archive's Priority and Section, harmless.json).
    expect(diffs.map((d) => d.path).filter((p) => /^var\/lib\/dpkg\/(status|info\/.*|diversions|triggers\/File|alternatives\/.*)$/.test(p))).toEqual([]);
    expect(diffs.length).toBeLessThan(100);
    expect(scanTree(ours).size).toBeGreaterThan(4000);
  });

  test("trixie's own layout: merged /usr by base-files, dash's /usr/bin/sh, the DEP 17 diversions, shells listed once", () => {
    const link = (root: string, p: string): string => execFileSync("readlink", [path.join(root, p)], { encoding: "utf8" }).trim();
    for (const p of ["bin", "sbin", "lib", "lib64", "usr/bin/sh"]) expect(link(ours, p), p).toBe(link(ref, p));
    const read = (root: string, p: string): string => readFileSync(path.join(root, p), "utf8");
    expect(read(ours, "etc/shells")).toBe(read(ref, "etc/shells"));
    expect(read(ours, "etc/shells").split("\n").filter((l) => l === "/bin/sh")).toEqual(["/bin/sh"]);
    expect(read(ours, "var/lib/dpkg/diversions")).toMatch(/^\/lib64\/ld-linux-x86-64\.so\.2$/m);
  });
});

describe("inside Kiln's trixie tree", () => {
  test("/bin/sh runs, and dpkg --audit, dpkg --verify and apt-get check are clean", () => {
    const out = inChroot(ours, 'echo "sh: $(readlink -f /bin/sh)"; echo "packages: $(dpkg-query -W | wc -l)"; dpkg --audit; echo audit=$?; dpkg --verify; echo verify=$?; apt-get check -qq; echo check=$?');
    expect(out).toBe("sh: /usr/bin/dash\npackages: 78\naudit=0\nverify=0\ncheck=0\n");
  });

  test("apt-get update from the mirror, apt-cache policy sees the installed version as the candidate, and apt reinstalls a package", () => {
    // Sources and lists under /tmp, so the image's own apt configuration is used but left as it was.
    // The test mirror is unsigned: trusted=yes for this test only.
    const apt = "-o Dir::Etc::SourceList=/tmp/kiln/sources.list -o Dir::Etc::SourceParts=/tmp/kiln/parts -o Dir::State::Lists=/tmp/kiln/lists";
    const out = inChroot(
      ours,
      `set -e
mkdir -p /tmp/kiln/parts /tmp/kiln/lists/partial
echo "deb [trusted=yes] file:/mirror trixie main" > /tmp/kiln/sources.list
apt-get -qq ${apt} update
apt-cache ${apt} policy apt | sed -n 's/^ *\\(Installed\\|Candidate\\): /\\1 /p; s/^ *[0-9]\\+ \\(file:\\/mirror .*\\)/\\1/p'
apt-get -qq ${apt} install --reinstall -y hostname >/dev/null
hostname --version 2>&1 | head -n 1 | cut -d' ' -f1
dpkg --audit && apt-get check -qq && echo clean`,
      { binds: { "/mirror": TRIXIE_MIRROR_DIR } },
    );
    const version = report.packages.find((p) => p.name === "apt")!.version;
    expect(out).toBe(`Installed ${version}\nCandidate ${version}\nfile:/mirror trixie/main amd64 Packages\nhostname\nclean\n`);
  });
});
