/**
 * All bookworm fix-ups, in order, over the 88 real minbase packages extracted with dpkg-deb —
 * compared with a real `debootstrap --variant=minbase` of the same mirror, and then used: dpkg,
 * dpkg-query, apt and the shell inside a chroot of the result.
 */
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { bookwormFixups } from "../../../src/rootfs/fixups/index.js";
import { MIRROR_DIR } from "../../helpers/global-setup.js";
import { DirView, entryBytes, runFixups, syntheticContext } from "./dir-view.js";
import { debootstrapReference, debootstrapTree, extractPackages, minbaseTree } from "./minbase.js";

const cleanup: string[] = [];
let root: string;
let ref: string;
let count: number;
const warnings: string[] = [];
const options = { warn: (m: string) => warnings.push(m), aptSources: [{ uri: "file:///mirror", suites: ["bookworm"], components: ["main"] }] };
let ctx: ReturnType<typeof syntheticContext>;

beforeAll(async () => {
  ref = debootstrapTree();
  const t = minbaseTree();
  root = t.root;
  count = t.packages.length;
  cleanup.push(root, ref);
  // The build clock: the day debootstrap's shadow file records, so that lastchg can match.
  const day = Number(readFileSync(path.join(ref, "etc/shadow"), "utf8").split(":")[2]);
  ctx = syntheticContext(t.packages, new Date(day * 86_400_000 + 12 * 3_600_000));
  await runFixups(root, bookwormFixups(options), ctx);
});
afterAll(() => {
  for (const d of cleanup) rmSync(d, { recursive: true, force: true });
});

/** Paths debootstrap has and Kiln deliberately does not make (see the table in fixups/index.ts). */
const NOT_MADE = [
  /^\.\/etc\/(\.pwd\.lock|passwd-|group-|hostname|resolv\.conf)$/,
  /^\.\/etc\/apt\/sources\.list$/,
  /^\.\/etc\/rc[0-6S]\.d\/[KS]01hwclock\.sh$/,
  /^\.\/etc\/systemd\/system\/(multi-user|timers)\.target\.wants(\/|$)/,
  /^\.\/var\/lib\/systemd\/deb-systemd-helper-enabled(\/|$)/,
  /^\.\/run\/mount$/,
  /^\.\/var\/cache\/apt\/archives\/[^/]+\.deb$/,
  /^\.\/var\/cache\/debconf\/[^/]+\.dat(-old)?$/,
  /^\.\/var\/cache\/ldconfig\/aux-cache$/,
  /^\.\/var\/lib\/apt\/lists\/[^/]*_dists_bookworm_/,
  /^\.\/var\/lib\/dpkg\/(lock|lock-frontend|status-old|diversions-old|triggers\/Lock)$/,
  /^\.\/var\/log\/(alternatives|bootstrap|dpkg)\.log$/,
];
/** Paths Kiln adds that debootstrap does not have. */
// var/lib/dpkg/arch: what mmdebstrap writes (the fidelity reference of bench/fidelity/), debootstrap not.
const ADDED = [/^\.\/var\/lib\/dpkg\/(statoverride|arch)$/, /^\.\/etc\/apt\/sources\.list\.d\/debian\.sources$/];

function listing(dir: string): Map<string, string> {
  const out = execFileSync("find", [".", "-path", "./proc", "-prune", "-o", "-path", "./sys", "-prune", "-o", "-path", "./dev", "-prune", "-o", "-printf", "%p %y %m %U:%G %l\\n"], { cwd: dir, maxBuffer: 64 << 20 }).toString();
  return new Map(out.split("\n").filter(Boolean).map((l) => [l.split(" ")[0]!, l]));
}

describe("bookworm minbase through every fix-up", () => {
  test("the minbase packages need nothing Kiln cannot replay", () => {
    expect(count).toBe(88);
    expect(warnings).toEqual([]);
  });

  test("the tree matches debootstrap's node for node: type, mode, owner, link target", () => {
    const ours = listing(root);
    const theirs = new Map(
      readFileSync(debootstrapReference().listing, "utf8")
        .split("\n")
        .filter(Boolean)
        .map((l) => [l.split(" ")[0]!, l]),
    );
    const missing = [...theirs.keys()].filter((p) => p !== "." && !ours.has(p) && !NOT_MADE.some((r) => r.test(p)));
    const extra = [...ours.keys()].filter((p) => !theirs.has(p) && !ADDED.some((r) => r.test(p)));
    const different = [...ours.keys()].filter((p) => p !== "." && theirs.has(p) && ours.get(p) !== theirs.get(p));
    expect({ missing, extra, different }).toEqual({ missing: [], extra: [], different: [] });
    expect(ours.size).toBeGreaterThan(6000);
  });

  test("the files scripts and dpkg write are byte-identical to debootstrap's", () => {
    const files = [
      ...["passwd", "group", "shadow", "gshadow", "shells", "nsswitch.conf", "timezone", "fstab", "environment", "subuid", "subgid", "security/opasswd", "profile", "motd", "ld.so.cache"].map((f) => `etc/${f}`),
      ...readdirSync(path.join(ref, "etc/pam.d")).map((f) => `etc/pam.d/${f}`),
      ...readdirSync(path.join(ref, "var/lib/pam")).map((f) => `var/lib/pam/${f}`),
      "var/lib/shells.state",
      ...["status", "diversions", "cmethopt", "info/format", "triggers/File", "triggers/ldconfig", "triggers/Unincorp"].map((f) => `var/lib/dpkg/${f}`),
      ...readdirSync(path.join(ref, "var/lib/dpkg/alternatives")).map((f) => `var/lib/dpkg/alternatives/${f}`),
      ...readdirSync(path.join(ref, "var/lib/dpkg/info")).map((f) => `var/lib/dpkg/info/${f}`),
    ];
    expect(files.length).toBeGreaterThan(400);
    const differ = files.filter((f) => !readFileSync(path.join(root, f)).equals(readFileSync(path.join(ref, f))));
    expect(differ).toEqual([]);
    expect(readlinkSync(path.join(root, "etc/localtime"))).toBe("/usr/share/zoneinfo/Etc/UTC");
  });

  test("dpkg-query sees 88 packages installed and dpkg --verify finds nothing", () => {
    const admin = path.join(root, "var/lib/dpkg");
    const status = execFileSync("dpkg-query", [`--admindir=${admin}`, "-W", "-f", "${Package} ${Status}\\n"]).toString().split("\n").filter(Boolean);
    expect(status.length).toBe(88);
    expect(status.every((l) => l.endsWith(" install ok installed"))).toBe(true);
    expect(execFileSync("dpkg", ["--root", root, "--verify"]).toString()).toBe("");
    expect(execFileSync("dpkg-query", [`--admindir=${admin}`, "-S", "/bin/ls"]).toString()).toBe("coreutils: /bin/ls\n");
  });

  test("running the fix-ups again changes nothing (stable, deterministic output)", async () => {
    const view = new DirView(root);
    const changed: string[] = [];
    for (const f of bookwormFixups(options)) {
      const r = await f.apply({ ...ctx, fs: view });
      for (const e of r.entries) {
        const cur = view.lstat(e.path);
        const same =
          cur !== undefined &&
          cur.type === e.type &&
          cur.mode === e.mode &&
          cur.uid === e.uid &&
          cur.gid === e.gid &&
          cur.linkname === e.linkname &&
          (e.type !== "file" || (await entryBytes(e)).equals(readFileSync(path.join(root, e.path))));
        if (!same) changed.push(`${f.name}: ${e.path}`);
      }
      for (const p of r.remove ?? []) changed.push(`${f.name}: removes ${p}`);
    }
    expect(changed).toEqual([]);
  });

  test("inside a chroot: sh, awk, getent, su, dpkg and apt work, and apt installs a package", () => {
    // A private mount namespace: /dev, /proc and the mirror are mounted for this process only.
    const script = `set -e
mount --rbind /dev "$1/dev"; mount -t proc proc "$1/proc"; mkdir -p "$1/mirror"; mount --bind "$2" "$1/mirror"
exec chroot "$1" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive /bin/sh -c '
  set -e
  echo "sh: $(readlink /bin/sh)"
  echo "a b c" | awk "{print \\"awk:\\", \\$2}"
  echo "packages: $(dpkg-query -W | wc -l)"
  getent passwd root
  su -s /bin/sh -c "id -un" root
  apt-get --version | head -n 1
  dpkg --verify && echo "verify: clean"
  # The image does not trust the unsigned test mirror; this test does, for itself.
  apt-get -qq -o Acquire::AllowInsecureRepositories=true update 2>/dev/null
  apt-get -qq -o APT::Get::AllowUnauthenticated=true install -y jq >/dev/null
  echo "{\\"kiln\\": 1}" | jq -c .
  ldconfig -p | grep -c libjq
  dpkg --verify && echo "verify: clean"
'`;
    const out = execFileSync("unshare", ["-m", "--propagation", "private", "sh", "-c", script, "chroot", root, MIRROR_DIR], { stdio: ["ignore", "pipe", "pipe"] }).toString();
    expect(out.split("\n")).toEqual([
      "sh: dash",
      "awk: b",
      "packages: 88",
      "root:x:0:0:root:/root:/bin/bash",
      "root",
      "apt 2.6.2 (amd64)",
      "verify: clean",
      '{"kiln":1}',
      "1",
      "verify: clean",
      "",
    ]);
  });
});

describe("a package set without the base system (--profile none: jq and its libraries)", () => {
  test("the fix-ups cope: root and nonroot accounts, no PAM, a dpkg database and an ld.so.cache that work", async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), "kiln-jq-"));
    cleanup.push(dir);
    const packages = extractPackages(dir, ["gcc-12-base", "libgcc-s1", "libc6", "libonig5", "libjq1", "jq"]);
    const warned: string[] = [];
    await runFixups(dir, bookwormFixups({ warn: (m) => warned.push(m) }), syntheticContext(packages));
    expect(warned).toEqual([]);
    // No base-passwd: the accounts distroless images have, so that getpwuid(0) and uid 65532 resolve.
    expect(readFileSync(path.join(dir, "etc/passwd"), "utf8")).toBe("root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n");
    expect(readFileSync(path.join(dir, "etc/group"), "utf8")).toBe("root:x:0:\nnonroot:x:65532:\n");
    expect(readFileSync(path.join(dir, "etc/shadow"), "utf8")).toMatch(/^root:\*:\d+:0:99999:7:::\nnonroot:\*:\d+:0:99999:7:::\n$/);
    expect(execFileSync("stat", ["-c", "%a %u:%g", path.join(dir, "home/nonroot"), path.join(dir, "root"), path.join(dir, "etc/shadow")]).toString()).toBe("700 65532:65532\n700 0:0\n640 0:0\n");
    expect(existsSync(path.join(dir, "etc/pam.d"))).toBe(false);
    const status = execFileSync("dpkg-query", [`--admindir=${path.join(dir, "var/lib/dpkg")}`, "-W", "-f", "${binary:Package} ${Status}\\n"]).toString();
    expect(status.split("\n").filter(Boolean).sort()).toEqual(["gcc-12-base:amd64 install ok installed", "jq install ok installed", "libc6:amd64 install ok installed", "libgcc-s1:amd64 install ok installed", "libjq1:amd64 install ok installed", "libonig5:amd64 install ok installed"]);
    expect(execFileSync("dpkg", ["--root", dir, "--verify"]).toString()).toBe("");
    const libs = execFileSync("ldconfig", ["-r", dir, "-p"]).toString();
    expect(libs).toContain("libjq.so.1 (libc6,x86-64) => /lib/x86_64-linux-gnu/libjq.so.1");
    expect(libs).toContain("libonig.so.5 (libc6,x86-64) => /lib/x86_64-linux-gnu/libonig.so.5");
    // Without a shell the image still runs its one program through the dynamic linker.
    const out = execFileSync("chroot", [dir, "/usr/bin/jq", "-n", "1+1"]).toString();
    expect(out).toBe("2\n");
  });
});
