/**
 * The maintainer-script interpreter against the real shell: the same scripts run by `sh` in a
 * chroot of the configured minbase tree and by Kiln's interpreter over a copy of it must leave
 * the same trees (type, mode, owner, link, content, xattrs) — the idioms of the corpus'
 * maintainer scripts, one script per family. Then what it must not do: guess.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { classify, compareTrees, scanTree } from "../../../bench/fidelity/compare.mjs";
import { alternativesFixup, bookwormFixups } from "../../../src/rootfs/fixups/index.js";
import { maintainerScriptsFixup, ScriptRun, type ScriptReportEntry } from "../../../src/rootfs/fixups/maintainer-scripts.js";
import { parseScript } from "../../../src/rootfs/fixups/script/parse.js";
import { runFixups, syntheticContext } from "./dir-view.js";
import { minbaseTree } from "./minbase.js";
import { syntheticPackage } from "./synthetic.js";

let configured: string;
const cleanup: string[] = [];
const CLOCK = new Date(Date.UTC(2025, 0, 1));

beforeAll(async () => {
  const t = minbaseTree();
  configured = t.root;
  cleanup.push(configured);
  await runFixups(configured, bookwormFixups(), syntheticContext(t.packages, CLOCK));
}, 300_000);
afterAll(() => {
  for (const d of cleanup) rmSync(d, { recursive: true, force: true });
});

function copy(): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), "kiln-script-"));
  cleanup.push(dir);
  execFileSync("cp", ["-a", `${configured}/.`, dir]);
  return dir;
}

/** Runs `script` as a package's postinst both ways; returns the differences and Kiln's report. */
async function both(script: string, name = "demo"): Promise<{ differences: string[]; report: ScriptReportEntry[] }> {
  const real = copy();
  const ours = copy();
  const shell = /^#!\s*(\S+)/.exec(script)?.[1] ?? "/bin/sh";
  execFileSync("chroot", [real, shell, "-c", script, "postinst", "configure", ""], {
    env: { PATH: "/usr/sbin:/usr/bin:/sbin:/bin", DPKG_MAINTSCRIPT_PACKAGE: name, DPKG_MAINTSCRIPT_NAME: "postinst", DPKG_ROOT: "", DEBIAN_FRONTEND: "noninteractive", SOURCE_DATE_EPOCH: String(CLOCK.getTime() / 1000) },
    stdio: "pipe",
  });
  const report: ScriptReportEntry[] = [];
  const run = new ScriptRun("bookworm");
  // The alternatives fix-up replays the calls the scripts made, as update-alternatives did in sh.
  await runFixups(ours, [maintainerScriptsFixup(run, { report }), alternativesFixup({ calls: run.calls })], syntheticContext([syntheticPackage({ name, members: { postinst: script } })], CLOCK));
  const sorted = classify(compareTrees(scanTree(real), scanTree(ours)), { scripts: [] }, () => []);
  // Each pair of copies goes as soon as it is compared: removing them all at the end is minutes
  // of afterAll on a busy machine.
  for (const d of [real, ours]) {
    rmSync(d, { recursive: true, force: true });
    cleanup.splice(cleanup.indexOf(d), 1);
  }
  // The shadow tools' backups and lock are not made (harmless.json says why); compared too otherwise.
  return { differences: sorted.unexplained.map((d) => `${d.path}: ${d.kind}`), report };
}

// Each case copies the configured minbase tree twice and hashes both whole trees: a few seconds
// alone, a minute or more when the machine's two cores are shared with the rest of the suite.
describe("the interpreter leaves what sh leaves", { timeout: 300_000 }, () => {
  test("directories, files, links, owners and modes (mkdir, install -d, touch, ln, chown, chgrp, chmod, cp, mv, rm, redirections)", async () => {
    const { differences, report } = await both(`#!/bin/sh
set -e
umask 022
mkdir -p /var/lib/demo/cache
mkdir -m 2750 /var/lib/demo/private
install -d -m 0710 -o root -g adm /var/log/demo
touch /var/log/demo/demo.log
chown root:adm /var/log/demo/demo.log
chmod 640 /var/log/demo/demo.log
chgrp staff /var/lib/demo/cache
chmod g+ws,o-rx /var/lib/demo/cache
ln -s /var/lib/demo /etc/demo
ln -sf ../share/demo /var/lib/demo/share
[ -d /etc/demo.d ] || mkdir /etc/demo.d
cat > /etc/demo.d/a.conf <<EOF
# written by $DPKG_MAINTSCRIPT_PACKAGE
key = value
EOF
echo "more" >> /etc/demo.d/a.conf
printf '%s=%s\\n' name demo > /etc/demo.d/b.conf
cp -p /etc/demo.d/a.conf /etc/demo.d/c.conf
mv /etc/demo.d/b.conf /etc/demo.d/d.conf
touch /etc/demo.d/gone && rm -f /etc/demo.d/gone
umask 066
touch /etc/demo.secret
`);
    expect(differences).toEqual([]);
    expect(report.every((r) => r.outcome === "emulated")).toBe(true);
  });

  test("control flow and expansions decide what runs: if, case, for, while read, functions with local, $(...), ${x%...}, test, set -e", async () => {
    const { differences, report } = await both(`#!/bin/sh
set -e
make_dir() {
  local dir mode
  dir="$1"; mode="\${2:-755}"
  [ -d "$dir" ] || mkdir -m "$mode" "$dir"
}
case "$1" in
  configure)
    make_dir /srv/a
    make_dir /srv/b 700
    if [ -z "$2" ]; then touch /srv/first-install; else touch /srv/upgrade; fi
    ;;
  abort-upgrade) touch /srv/never ;;
esac
for f in alpha beta gamma; do
  [ "$f" = beta ] && continue
  echo "$f" >> /srv/list
done
printf 'x one\\ny two\\nz three\\n' > /srv/pairs
while read k v; do
  touch "/srv/$k-$v"
done < /srv/pairs
base=$(basename /usr/share/doc/dash/copyright)
name=/srv/\${base%right}.txt
: > "$name"
if dpkg --compare-versions "$2" lt-nl 1.0; then touch /srv/old; fi
if getent passwd nobody >/dev/null && ! getent group no-such-group >/dev/null; then touch /srv/accounts-known; fi
if command -v dash >/dev/null; then touch /srv/has-dash; fi
test -L /bin && touch /srv/merged
# set -e ignores a failing non-final command of && and ||, and so the compound commands it ends
# (trixie's tzdata postinst: if ...; then which restorecon && restorecon ...; fi)
if true; then command -v no-such-tool >/dev/null && no-such-tool /etc; fi
{ false && true; }
for f in one; do false || false && true; done
case x in x) ! true ;; esac
touch /srv/after-ignored-failures
`);
    expect(differences).toEqual([]);
    expect(report.filter((r) => r.outcome !== "emulated")).toEqual([]);
  });

  test("system users and groups as adduser, addgroup, useradd and groupadd make them, and statoverrides", async () => {
    const { differences } = await both(`#!/bin/sh
set -e
getent group demo-admins >/dev/null || addgroup --system demo-admins
adduser --system --group --home /var/lib/demo-svc --quiet demo-svc
adduser --system --ingroup demo-admins --home /nonexistent --no-create-home --shell /bin/false --gecos "Demo worker" worker
adduser --system --quiet demo-svc || true
adduser worker demo-admins
groupadd -r demo-sysgrp
useradd -r -s /usr/sbin/nologin demo-sysusr
mkdir -p /var/lib/demo-data
dpkg-statoverride --list /var/lib/demo-data >/dev/null || dpkg-statoverride --update --add demo-svc demo-admins 2770 /var/lib/demo-data
dpkg-statoverride --add root demo-admins 4750 /usr/bin/su
`);
    expect(differences).toEqual([]);
  });

  test("the server packages' idioms: set -o pipefail, chmod 04755, find with ! -uid/-or/( )/-regex/-print0/-printf and xargs, getopts, id -Gn, seq, ls, mktemp, dpkg-divert --rename, update-alternatives --query, helper scripts of the tree", async () => {
    const { differences, report } = await both(`#!/bin/bash
set -e
set -o pipefail
case "$1" in configure) touch /srv/configured ;; esac
mkdir -p /srv/data/sub
touch /srv/data/a /srv/data/sub/b
addgroup --system demo
adduser --system --ingroup demo --no-create-home --home /nonexistent demo
find /srv/data ! -uid "$(id -u demo)" -print0 | xargs -0 -r chown demo
find /srv/data -follow -not -group demo -print0 2>/dev/null | xargs -0 --no-run-if-empty chgrp demo
find /srv ! -uid 0 -print0 -or ! -gid 0 -print0 | xargs -0 -r echo | tr ' ' '\\n' | sort > /srv/not-roots
find /usr/share/doc/dash ! -uid 0 -print0 | xargs -0 -r chown demo
adduser --quiet demo adm
id -Gn demo > /srv/groups
if id -Gn demo | grep -qw adm; then touch /srv/in-adm; fi
for n in $(seq 3 -1 1); do touch /srv/n$n; done
mkdir -m 2755 /srv/sgid-kept /srv/sgid-cleared && chmod 0755 /srv/sgid-kept && chmod 00755 /srv/sgid-cleared
touch /srv/suid && chmod 04755 /srv/suid
cat /dev/null > /srv/emptied && echo "# kept" >> /srv/emptied
ls /srv/data > /srv/listing
while getopts "qv:m:" opt -q -v 8.2 -mcal; do echo "$opt=\${OPTARG:-}" >> /srv/opts; done
touch /srv/data/x.bak
find /srv/data -mindepth 1 \\! \\( -name a -o -name '*.bak' \\) -printf '%f\\n' | sort > /srv/found
find /srv/data -regex '.*/su[a-z]' -printf '%p\\n' > /srv/by-regex
TMP=$(mktemp --tmpdir demo.XXXXXX)
sed -e 's/^/> /' /etc/debian_version > "$TMP"
chmod 644 "$TMP"
cp -p "$TMP" /srv/from-tmp
rm -f "$TMP"
dpkg-divert --package demo --divert /usr/bin/tac.real --rename --add /usr/bin/tac
update-alternatives --quiet --install /usr/local/bin/demo demo /usr/bin/head 80
update-alternatives --quiet --install /usr/local/bin/demo demo /usr/bin/tail 50
if update-alternatives --query demo | grep -q "Value: /usr/bin/head"; then touch /srv/best-head; fi
update-alternatives --query no-such-group >/dev/null 2>&1 || touch /srv/no-group
OUT=$(LC_ALL=C update-alternatives --display no-such-group 2>/dev/null) || true
if [ "\${OUT#*auto mode}" != "$OUT" ]; then touch /srv/never; fi
printf '#!/bin/sh\nset -e\nmkdir -p "$1"\necho "$0 $#" > "$1/by"\n' > /usr/local/sbin/demo-helper
chmod 755 /usr/local/sbin/demo-helper
/usr/local/sbin/demo-helper /srv/by-path
sh /usr/local/sbin/demo-helper /srv/by-sh
`);
    expect(differences).toEqual([]);
    expect(report.filter((r) => r.outcome !== "emulated")).toEqual([]);
  });
});

describe("dpkg-divert --no-rename (trixie's DEP 17 protective diversions)", () => {
  test("added and removed as dpkg-divert records them; removing one that is not there is a no-op", async () => {
    const { differences, report } = await both(`#!/bin/sh
set -e
dpkg-divert --quiet --add --no-rename --package demo --divert /.lib32.usr-is-merged /lib32
dpkg-divert --quiet --add --no-rename --package demo --divert /.lib64.usr-is-merged /lib64
dpkg-divert --quiet --package demo --remove --no-rename --divert /.lib64.usr-is-merged /lib64
dpkg-divert --quiet --package demo --no-rename --remove /not/diverted
`);
    expect(differences).toEqual([]);
    expect(report.filter((r) => r.outcome !== "emulated")).toEqual([]);
  });
});

describe("what the interpreter must not do: guess", () => {
  async function report(script: string): Promise<ScriptReportEntry[]> {
    const r: ScriptReportEntry[] = [];
    await runFixups(copy(), [maintainerScriptsFixup(new ScriptRun("bookworm"), { report: r })], syntheticContext([syntheticPackage({ name: "guess", members: { postinst: script } })], CLOCK));
    return r;
  }

  test("a branch that depends on the running machine is reported, not applied", async () => {
    const r = await report(`#!/bin/sh\nif [ "$(uname -r)" = 6.1.0 ]; then mkdir /srv/kernel-specific; fi\n`);
    expect(r).toEqual([{ package: "guess", script: "postinst", outcome: "unreproduced", effect: expect.stringMatching(/^mkdir \/srv\/kernel-specific \(only if `\[ "\$\(uname -r\)" = 6\.1\.0 \]` .* which is not known at build time\)$/) }]);
  });

  test("a file written with what Kiln cannot know is reported, not written empty", async () => {
    const r = await report(`#!/bin/sh\necho "kernel $(uname -r)" > /etc/kernel-seen\n`);
    expect(r).toEqual([{ package: "guess", script: "postinst", outcome: "unreproduced", effect: "writes /etc/kernel-seen with content not known at build time (the build host's kernel)" }]);
  });

  test("an unknown program is reported with its words; not-needed ones say why", async () => {
    const r = await report(`#!/bin/sh\nset -e\nfrob --init /var/lib/frob\ninvoke-rc.d frob start || true\ndeb-systemd-helper enable frob.service\n`);
    expect(r.map((e) => [e.outcome, e.effect.split(":")[0]])).toEqual([
      ["unreproduced", "runs `frob --init /var/lib/frob`, which Kiln does not know"],
      ["not-needed", "starts, stops or reloads a service"],
      ["not-needed", "enables systemd units (links under /etc/systemd/system, state under /var/lib/systemd)"],
    ]);
  });

  test("a script that is not a shell script, or that sh cannot read, is reported whole", async () => {
    expect(await report("#!/usr/bin/perl\nprint 1;\n")).toEqual([{ package: "guess", script: "postinst", outcome: "unreproduced", effect: "a /usr/bin/perl script, which Kiln does not interpret" }]);
    const r = await report("#!/bin/sh\nif true; then\n  echo unterminated\n");
    expect(r[0]).toMatchObject({ outcome: "unreproduced", effect: expect.stringMatching(/^a script Kiln cannot read \(line \d+: expected "fi"/) });
  });

  test("the parser reads every shell construct of the corpus' scripts", () => {
    const list = parseScript(`f() { local x=\${1:-a}; echo "\${x#a}" \${#x} \${y:+set}; }\ncase "$1" in (a|b) f a ;; *) : ;; esac\nx=$( (cd / && echo \`pwd\`) )\ncat <<-'EOF' >/dev/null\n\tbody $x\n\tEOF\nwhile ! true; do break 2; done\n`);
    expect(list.items.length).toBe(5);
  });
});
