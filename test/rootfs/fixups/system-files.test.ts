/**
 * The small fix-ups that write system files (accounts, base-files, login/PAM files, nsswitch,
 * tzdata, apt sources): on synthetic trees, and on the real minbase packages compared with a
 * real debootstrap of the same mirror.
 */
import { execFileSync } from "node:child_process";
import { lstatSync, readFileSync, readlinkSync, rmSync } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { accountsFixup, shadowFor } from "../../../src/rootfs/fixups/accounts.js";
import { aptSourceFor, aptSourcesFixup, formatAptSources } from "../../../src/rootfs/fixups/apt-sources.js";
import { DEFAULT_DISTRIBUTIONS } from "../../../src/server/config.js";
import { baseFilesFixup } from "../../../src/rootfs/fixups/base-files.js";
import { maintainerScriptsFixup, ScriptRun } from "../../../src/rootfs/fixups/maintainer-scripts.js";
import { mergedUsrFixup } from "../../../src/rootfs/fixups/merged-usr.js";
import { nsswitchFixup } from "../../../src/rootfs/fixups/nsswitch.js";
import { tzdataFixup } from "../../../src/rootfs/fixups/tzdata.js";
import type { Fixup } from "../../../src/rootfs/types.js";
import { DirView, entryText, runFixups, syntheticContext } from "./dir-view.js";
import { debootstrapReference, debootstrapTree, minbaseTree } from "./minbase.js";
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

const PASSWD_MASTER = "root:*:0:0:root:/root:/bin/bash\ndaemon:*:1:1:daemon:/usr/sbin:/usr/sbin/nologin\nnobody:*:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n";
const GROUP_MASTER = "root:*:0:\nmail:*:8:\nshadow:*:42:\nutmp:*:43:\nstaff:*:50:\n";

describe("accounts", () => {
  const masters = { "usr/share/base-passwd/passwd.master": PASSWD_MASTER, "usr/share/base-passwd/group.master": GROUP_MASTER, "etc/x": "" };

  test("passwd, group, shadow and gshadow as shadowconfig leaves them, lastchg from the build clock", async () => {
    const root = tree(masters);
    // 2001-09-09T01:46:40Z is 1e9 seconds after the epoch: day 11574.
    const clock = new Date(1_000_000_000_000);
    await runFixups(root, [accountsFixup()], syntheticContext([syntheticPackage({ name: "base-passwd" }), syntheticPackage({ name: "passwd" })], clock));
    expect(readFileSync(path.join(root, "etc/passwd"), "utf8")).toBe("root:x:0:0:root:/root:/bin/bash\ndaemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n");
    expect(readFileSync(path.join(root, "etc/group"), "utf8")).toBe("root:x:0:\nmail:x:8:\nshadow:x:42:\nutmp:x:43:\nstaff:x:50:\n");
    expect(readFileSync(path.join(root, "etc/shadow"), "utf8")).toBe("root:*:11574:0:99999:7:::\ndaemon:*:11574:0:99999:7:::\nnobody:*:11574:0:99999:7:::\n");
    expect(readFileSync(path.join(root, "etc/gshadow"), "utf8")).toBe("root:*::\nmail:*::\nshadow:*::\nutmp:*::\nstaff:*::\n");
    for (const [f, mode, gid] of [
      ["etc/passwd", 0o644, 0],
      ["etc/group", 0o644, 0],
      ["etc/shadow", 0o640, 42],
      ["etc/gshadow", 0o640, 42],
    ] as const) {
      const st = lstatSync(path.join(root, f));
      expect([f, st.mode & 0o7777, st.uid, st.gid]).toEqual([f, mode, 0, gid]);
    }
  });

  test("reproducible: the same day gives the same bytes, whatever the hour", () => {
    const a = shadowFor("root:x:0:0::/root:/bin/sh\n", new Date("2024-05-01T00:00:01Z"));
    const b = shadowFor("root:x:0:0::/root:/bin/sh\n", new Date("2024-05-01T23:59:59Z"));
    expect(a).toBe(b);
    expect(a).not.toBe(shadowFor("root:x:0:0::/root:/bin/sh\n", new Date("2024-05-02T00:00:00Z")));
  });

  test("an existing /etc/passwd is left alone; without the passwd package there is no shadow file", async () => {
    const kept = tree({ ...masters, "etc/passwd": "root:x:0:0::/root:/bin/sh\n" });
    const r1 = await accountsFixup().apply({ ...syntheticContext([syntheticPackage({ name: "passwd" })]), fs: new DirView(kept) });
    expect(r1.entries).toEqual([]);
    const noShadow = tree(masters);
    const r2 = await accountsFixup().apply({ ...syntheticContext([syntheticPackage({ name: "base-passwd" })]), fs: new DirView(noShadow) });
    expect(r2.entries.map((e) => e.path).sort()).toEqual(["etc/group", "etc/passwd"]);
    expect(await entryText(r2.entries.find((e) => e.path === "etc/passwd"))).toBe(PASSWD_MASTER);
  });
});

describe("base-files", () => {
  test("a /var/run that holds files becomes a link and its content moves to /run", async () => {
    const root = tree({
      ...{ "usr/share/base-passwd/group.master": GROUP_MASTER },
      "usr/share/base-files/motd": "hello\n",
      "var/run/foo/pid": "1\n",
      "var/lock": { dir: true, mode: 0o1777 },
      run: { dir: true },
      var: { dir: true },
      etc: { dir: true },
    });
    const result = await baseFilesFixup().apply({ ...syntheticContext([syntheticPackage({ name: "base-files" })]), fs: new DirView(root) });
    expect(result.remove).toEqual(["var/run/foo"]);
    await runFixups(root, [{ name: "x", replaces: "", apply: async () => result } satisfies Fixup], syntheticContext());
    expect(readlinkSync(path.join(root, "var/run"))).toBe("/run");
    expect(readlinkSync(path.join(root, "var/lock"))).toBe("/run/lock");
    expect(readFileSync(path.join(root, "run/foo/pid"), "utf8")).toBe("1\n");
    expect(readFileSync(path.join(root, "etc/motd"), "utf8")).toBe("hello\n");
    const mail = lstatSync(path.join(root, "var/mail"));
    expect([mail.mode & 0o7777, mail.gid]).toEqual([0o2775, 8]);
    const lock = lstatSync(path.join(root, "run/lock"));
    expect(lock.mode & 0o7777).toBe(0o1777);
    const wtmp = lstatSync(path.join(root, "var/log/wtmp"));
    expect([wtmp.mode & 0o7777, wtmp.gid, wtmp.size]).toEqual([0o664, 43, 0]);
    expect(lstatSync(path.join(root, "tmp")).mode & 0o7777).toBe(0o1777);
  });

  test("with /etc/staff-group-for-usr-local, /usr/local is root:staff 2775", async () => {
    const root = tree({ "usr/share/base-passwd/group.master": GROUP_MASTER, "etc/staff-group-for-usr-local": "", "usr/share/base-files/motd": "" });
    const result = await baseFilesFixup().apply({ ...syntheticContext([syntheticPackage({ name: "base-files" })]), fs: new DirView(root) });
    const local = result.entries.find((e) => e.path === "usr/local/bin")!;
    expect([local.mode, local.gid]).toEqual([0o2775, 50]);
  });
});



describe("on the real minbase, compared with debootstrap", () => {
  let root: string;
  let ref: string;
  beforeAll(async () => {
    ref = debootstrapTree();
    const t = minbaseTree();
    root = t.root;
    cleanup.push(root, ref);
    const day = Number(readFileSync(path.join(ref, "etc/shadow"), "utf8").split(":")[2]);
    await runFixups(root, [mergedUsrFixup(), accountsFixup(), baseFilesFixup(), nsswitchFixup(), tzdataFixup(), maintainerScriptsFixup(new ScriptRun("bookworm"))], syntheticContext(t.packages, new Date(day * 86_400_000)));
  });

  test("the files these scripts write are byte-identical, with the same mode and owner", () => {
    for (const f of ["passwd", "group", "shadow", "gshadow", "fstab", "profile", "motd", "nsswitch.conf", "timezone", "environment", "subuid", "subgid", "security/opasswd"]) {
      const a = lstatSync(path.join(root, "etc", f));
      const b = lstatSync(path.join(ref, "etc", f));
      expect([f, a.mode, a.uid, a.gid, readFileSync(path.join(root, "etc", f), "utf8")]).toEqual([f, b.mode, b.uid, b.gid, readFileSync(path.join(ref, "etc", f), "utf8")]);
    }
    expect(readlinkSync(path.join(root, "etc/localtime"))).toBe(readlinkSync(path.join(ref, "etc/localtime")));
  });

  test("the directories, links and empty logs of base-files and login match debootstrap's listing", () => {
    const listing = new Map(
      readFileSync(debootstrapReference().listing, "utf8")
        .split("\n")
        .filter(Boolean)
        .map((l) => [l.split(" ")[0]!, l]),
    );
    const paths = ["bin", "sbin", "lib", "lib64", "tmp", "mnt", "srv", "opt", "media", "etc/opt", "var/opt", "var/mail", "run/lock", "var/run", "var/lock", "var/spool/mail", "usr/local", "usr/local/share/man", "usr/local/bin", "usr/local/games", "usr/local/lib", "usr/local/include", "usr/local/sbin", "usr/local/src", "usr/local/etc", "usr/local/man", "var/log/wtmp", "var/log/btmp", "var/log/lastlog", "var/log/faillog", "usr/share/info/dir", "etc/dpkg/origins/default", "root/.profile", "root/.bashrc"];
    const ours = execFileSync("find", paths.map((p) => `./${p}`).concat(["-maxdepth", "0", "-printf", "%p %y %m %U:%G %l\\n"]), { cwd: root })
      .toString()
      .split("\n")
      .filter(Boolean);
    expect(ours.length).toBe(paths.length);
    for (const line of ours) expect(line).toBe(listing.get(line.split(" ")[0]!));
  });

  test("pwck and grpck accept the account files", () => {
    execFileSync("pwck", ["-r", "-q", "-R", root]);
    execFileSync("grpck", ["-r", "-R", root]);
  });
});
