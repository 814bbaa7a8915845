/**
 * The pam-auth-update fix-up against the real pam-auth-update, run in a chroot of the extracted
 * minbase (its own perl, debconf and libpam-runtime) on a copy of the same tree, and against a
 * real debootstrap.
 */
import { execFileSync } from "node:child_process";
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { accountsFixup } from "../../../src/rootfs/fixups/accounts.js";
import { baseFilesFixup } from "../../../src/rootfs/fixups/base-files.js";
import { dpkgDatabaseFixup } from "../../../src/rootfs/fixups/dpkg-database.js";
import { mergedUsrFixup } from "../../../src/rootfs/fixups/merged-usr.js";
import { pamAuthUpdateFixup, parsePamProfile } from "../../../src/rootfs/fixups/pam-auth-update.js";
import type { InstalledPackage } from "../../../src/rootfs/types.js";
import { DirView, entryText, runFixups, syntheticContext } from "./dir-view.js";
import { debootstrapTree, minbaseTree } from "./minbase.js";

const TYPES = ["auth", "account", "password", "session", "session-noninteractive"];
const cleanup: string[] = [];
let root: string;
let packages: InstalledPackage[];

beforeAll(async () => {
  const t = minbaseTree();
  root = t.root;
  packages = t.packages;
  cleanup.push(root);
  // pam-auth-update reads its debconf template from the dpkg database, as at first configuration.
  await runFixups(root, [mergedUsrFixup(), accountsFixup(), baseFilesFixup(), dpkgDatabaseFixup()], syntheticContext(packages));
});
afterAll(() => {
  for (const d of cleanup) rmSync(d, { recursive: true, force: true });
});

/** What our fix-up writes for the tree, by path. */
async function ours(): Promise<Map<string, string>> {
  const r = await pamAuthUpdateFixup().apply({ ...syntheticContext(packages), fs: new DirView(root) });
  const out = new Map<string, string>();
  for (const e of r.entries) if (e.type === "file") out.set(e.path, await entryText(e));
  return out;
}

/** What pam-auth-update --package --force writes, run in a chroot of a copy of the tree. */
function theirs(): Map<string, string> {
  const copy = mkdtempSync(path.join(os.tmpdir(), "kiln-pam-"));
  cleanup.push(copy);
  cpSync(root, copy, { recursive: true, verbatimSymlinks: true });
  mkdirSync(path.join(copy, "dev"), { recursive: true });
  // A private mount namespace: the bind mount of /dev disappears with the process.
  execFileSync("unshare", ["-m", "--propagation", "private", "sh", "-c", `mount --rbind /dev "$1/dev" && chroot "$1" env -i PATH=/usr/sbin:/usr/bin DEBIAN_FRONTEND=noninteractive pam-auth-update --package --force`, "pam", copy], { stdio: "ignore" });
  const out = new Map<string, string>();
  for (const t of TYPES) {
    out.set(`etc/pam.d/common-${t}`, readFileSync(path.join(copy, `etc/pam.d/common-${t}`), "utf8"));
    out.set(`var/lib/pam/${t}`, readFileSync(path.join(copy, `var/lib/pam/${t}`), "utf8"));
  }
  out.set("var/lib/pam/seen", readFileSync(path.join(copy, "var/lib/pam/seen"), "utf8"));
  return out;
}

describe("pam-auth-update", () => {
  test("minbase: the same common-* files and state as a real debootstrap", async () => {
    const ref = debootstrapTree();
    cleanup.push(ref);
    const mine = await ours();
    expect([...mine.keys()].sort()).toEqual([...TYPES.map((t) => `etc/pam.d/common-${t}`), ...TYPES.map((t) => `var/lib/pam/${t}`), "var/lib/pam/seen"].sort());
    for (const [p, text] of mine) expect(text, p).toBe(readFileSync(path.join(ref, p), "utf8"));
  });

  test("more profiles: priorities, Initial lines, conflicts, Additional blocks, interactive-only sessions, disabled pam_tally", async () => {
    const configs = path.join(root, "usr/share/pam-configs");
    writeFileSync(
      path.join(configs, "ldap"),
      "Name: LDAP Authentication\nDefault: yes\nPriority: 128\nConflicts: krb5\nAuth-Type: Primary\nAuth:\n\t[success=end default=ignore]\tpam_ldap.so use_first_pass\nAuth-Initial:\n\t[success=end default=ignore]\tpam_ldap.so\nAccount-Type: Primary\nAccount:\n\t[success=end default=ignore]\tpam_ldap.so\nSession-Type: Additional\nSession:\n\toptional\t\t\tpam_ldap.so\nPassword-Type: Primary\nPassword:\n\t[success=end user_unknown=ignore default=die]\tpam_ldap.so use_authtok try_first_pass\n",
    );
    writeFileSync(path.join(configs, "krb5"), "Name: Kerberos authentication\nDefault: yes\nPriority: 704\nConflicts: ldap\nAuth-Type: Primary\nAuth:\n\t[success=end default=ignore]\tpam_krb5.so minimum_uid=1000 use_first_pass\n");
    writeFileSync(path.join(configs, "sys"), "Name: Register user sessions\nDefault: yes\nPriority: 0\nSession-Interactive-Only: yes\nSession-Type: Additional\nSession:\n\toptional\tpam_systemd.so\n");
    writeFileSync(path.join(configs, "cap"), "Name: Inheritable Capabilities Management\nDefault: yes\nPriority: 96\nAuth-Type: Additional\nAuth:\n\toptional\t\t\tpam_cap.so\n");
    writeFileSync(path.join(configs, "tally"), "Name: tally\nDefault: yes\nPriority: 999\nAuth-Type: Primary\nAuth:\n\trequired pam_tally.so\n");
    writeFileSync(path.join(configs, "cap~"), "Name: editor backup\nDefault: yes\nPriority: 1000\nAuth-Type: Primary\nAuth:\n\trequired pam_nope.so\n");
    try {
      const mine = await ours();
      const real = theirs();
      for (const [p, text] of real) expect(mine.get(p), p).toBe(text);
      expect(mine.get("etc/pam.d/common-auth")).toContain("auth\t[success=2 default=ignore]\tpam_krb5.so minimum_uid=1000 use_first_pass\n");
    } finally {
      for (const f of ["ldap", "krb5", "sys", "cap", "tally", "cap~"]) rmSync(path.join(configs, f));
    }
  });

  test("profile fields as pam-auth-update parses them", () => {
    const p = parsePamProfile("Name: X\nDefault: yes\nConflicts: a, b\nAuth-Final:\n\t  line one  \n\n\tline two\nSession-Type: Additional\nSession:\n\trequired pam_x.so\n");
    expect(p.fields.get("Auth")).toBe("line one\nline two");
    expect([...p.conflicts]).toEqual(["a", "b"]);
    expect(p.fields.get("Session-noninteractive")).toBe("required pam_x.so");
    expect(p.disabled).toBe(false);
  });
});
