/**
 * Each fix-up family against what the real maintainer scripts produce: Kiln's image of minbase
 * plus a few small packages whose scripts exercise them (ca-certificates, iputils-ping with
 * libcap2-bin, cron, uuid-runtime, ssl-cert, readline-common, python3, curl, wget) is compared
 * with mmdebstrap's installation of the same packages from the same mirror, which ran every
 * script in a chroot — then used, inside a chroot of Kiln's image, as a user would.
 */
import { execFile, execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync, writeFileSync } from "node:fs";
import { createServer } from "node:https";
import type { AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { classify, compareTrees, scanTree } from "../../../bench/fidelity/compare.mjs";
import { pathsFor, studyFor } from "../../../src/rootfs/fixups/study/index.js";
import { buildDeb, tempDir } from "../../fixtures/debs.js";
import { inChroot } from "../../helpers/chroot.js";
import { SCRIPTED_PACKAGES } from "../../helpers/global-setup.js";
import { kilnBuild, kilnTree, referenceTree, unpackImage } from "../../helpers/scripted-image.js";
import { validateSpdx } from "../../helpers/spdx.js";

let ref: string;
let ours: string;
let reportFile: string;
let sbomFile: string;
const cleanup: string[] = [];

beforeAll(async () => {
  [ref, { root: ours, report: reportFile, sbom: sbomFile }] = await Promise.all([referenceTree(), kilnTree()]);
  cleanup.push(ref, ours);
}, 1_800_000);
afterAll(() => {
  for (const d of cleanup) rmSync(d, { recursive: true, force: true });
});

const read = (root: string, p: string): Buffer => readFileSync(path.join(root, p));
/** Mode and owner, with the names the tree itself gives the ids (not the build host's). */
function mode(root: string, p: string): string {
  const [bits, uid, gid] = execFileSync("stat", ["-c", "%a %u %g", path.join(root, p)]).toString().trim().split(" ");
  const name = (file: string, id: string): string => readFileSync(path.join(root, file), "utf8").split("\n").find((l) => l.split(":")[2] === id)?.split(":")[0] ?? id;
  return `${bits} ${name("etc/passwd", uid!)}:${name("etc/group", gid!)}`;
}

describe("Kiln's image against the real maintainer scripts (mmdebstrap of the same packages)", () => {
  test("the same packages, and every difference of the trees harmless or explained by the report", () => {
    const pkgs = (root: string): string[] =>
      execFileSync("dpkg-query", [`--admindir=${path.join(root, "var/lib/dpkg")}`, "-W", "-f", "${Package} ${Version}\\n"], { encoding: "utf8" }).trim().split("\n").sort();
    expect(pkgs(ours)).toEqual(pkgs(ref));
    const report = JSON.parse(readFileSync(reportFile, "utf8")) as { scripts: Array<{ package: string; script: string; outcome: string; effect: string }> };
    const study = studyFor("bookworm");
    const sorted = classify(compareTrees(scanTree(ref), scanTree(ours)), report, (e) => pathsFor(study, e.package, e.effect));
    expect(sorted.unexplained.map((d) => `${d.path}: ${d.kind}`)).toEqual([]);
    // The byte-compiled Python modules are the explained part, and the report says why.
    expect(sorted.explained.length).toBeGreaterThan(100);
    expect(sorted.explained.every((d) => /__pycache__|\.pyc$|snakeoil/.test(d.path) || d.path.endsWith(".0"))).toBe(true);
  });

  test("CA certificates: the bundle, the links and /etc/ca-certificates.conf are byte-identical to update-ca-certificates'", () => {
    expect(read(ours, "etc/ssl/certs/ca-certificates.crt").equals(read(ref, "etc/ssl/certs/ca-certificates.crt"))).toBe(true);
    expect(read(ours, "etc/ca-certificates.conf").equals(read(ref, "etc/ca-certificates.conf"))).toBe(true);
    const links = (root: string): string[] =>
      readdirSync(path.join(root, "etc/ssl/certs"))
        .filter((n) => n !== "ssl-cert-snakeoil.pem")
        .map((n) => `${n} -> ${statSync(path.join(root, "etc/ssl/certs", n), { throwIfNoEntry: false }) ? tryLink(path.join(root, "etc/ssl/certs", n)) : "?"}`)
        .filter((l) => !/^[0-9a-f]{8}\.0 -> ssl-cert-snakeoil\.pem$/.test(l))
        .sort();
    expect(links(ours).length).toBeGreaterThan(280);
    expect(links(ours)).toEqual(links(ref));
    expect(mode(ours, "usr/local/share/ca-certificates")).toBe(mode(ref, "usr/local/share/ca-certificates"));
  });

  test("file capabilities: getcap sees on ping what setcap left, and ping is not setuid", () => {
    const caps = (root: string): string => execFileSync("getcap", [path.join(root, "usr/bin/ping")], { encoding: "utf8" }).replace(root, "");
    expect(caps(ours)).toBe("/usr/bin/ping cap_net_raw=ep\n");
    expect(caps(ours)).toBe(caps(ref));
    expect(mode(ours, "usr/bin/ping")).toBe("755 root:root");
  });

  test("system users and groups: the records adduser and addgroup make, numbered first-free in install order", () => {
    // apt configures packages in its own order, and adduser numbers accounts first-free in that
    // order; Kiln numbers them in its install order. Everything else must be identical.
    const accounts = (root: string): Record<string, string[]> => {
      const lines = (f: string): string[][] => read(root, f).toString().split("\n").filter(Boolean).map((l) => l.split(":"));
      const groupName = new Map(lines("etc/group").map((g) => [g[2], g[0]]));
      return {
        passwd: lines("etc/passwd").map((u) => `${u[0]}:${u[1]}:${groupName.get(u[3])}:${u.slice(4).join(":")}`).sort(),
        group: lines("etc/group").map((g) => `${g[0]}:${g[1]}:${g[3]}`).sort(),
        shadow: lines("etc/shadow").map((l) => l.join(":")).sort(),
        gshadow: lines("etc/gshadow").map((l) => l.join(":")).sort(),
        uids: lines("etc/passwd").map((u) => u[2]!).sort(),
        gids: lines("etc/group").map((g) => g[2]!).sort(),
      };
    };
    expect(accounts(ours)).toEqual(accounts(ref));
    expect(read(ours, "etc/passwd").toString()).toMatch(/^uuidd:x:100:\d+::\/run\/uuidd:\/usr\/sbin\/nologin$/m);
    expect(read(ours, "etc/group").toString()).toMatch(/^crontab:x:101:\nssl-cert:x:102:\nuuidd:x:103:\n/m);
    expect(mode(ours, "var/lib/libuuid")).toBe(mode(ref, "var/lib/libuuid"));
  });

  test("dpkg-statoverride: the database and the owners and modes it applied", () => {
    expect(read(ours, "var/lib/dpkg/statoverride").toString()).toBe(read(ref, "var/lib/dpkg/statoverride").toString());
    expect(mode(ours, "usr/bin/crontab")).toBe("2755 root:crontab");
    expect(mode(ours, "usr/bin/crontab")).toBe(mode(ref, "usr/bin/crontab"));
    expect(mode(ours, "etc/ssl/private")).toBe(mode(ref, "etc/ssl/private"));
    expect(mode(ours, "var/spool/cron/crontabs")).toBe("1730 root:crontab");
  });

  test("files, directories and links scripts create: inputrc, Python's debian_config and dist-packages", () => {
    for (const f of ["etc/inputrc", "etc/python3/debian_config"]) {
      expect(read(ours, f).equals(read(ref, f)), f).toBe(true);
      expect(mode(ours, f)).toBe(mode(ref, f));
    }
    expect(mode(ours, "usr/local/lib/python3.11/dist-packages")).toBe(mode(ref, "usr/local/lib/python3.11/dist-packages"));
    expect(tryLink(path.join(ours, "etc/alternatives/ping"))).toBe(tryLink(path.join(ref, "etc/alternatives/ping")));
  });

  test("apt's automatic marks: apt-mark showauto is the same", () => {
    const auto = (root: string): string[] => inChroot(root, "apt-mark showauto").trim().split("\n").sort();
    expect(auto(ours).length).toBeGreaterThan(20);
    expect(auto(ours)).toEqual(auto(ref));
  });

  test("the report names every package with a maintainer script or trigger, and what Kiln did not reproduce", () => {
    const report = JSON.parse(readFileSync(reportFile, "utf8")) as { digest: string; packages: Array<{ name: string }>; scripts: Array<{ package: string; script: string; outcome: string; effect: string }> };
    const withScripts = execFileSync("sh", ["-c", `cd ${path.join(ours, "var/lib/dpkg/info")} && ls | sed -n 's/\\.\\(preinst\\|postinst\\|config\\|triggers\\|prerm\\|postrm\\)$//p' | sed 's/:.*//' | sort -u`], { encoding: "utf8" }).trim().split("\n");
    const named = new Set(report.scripts.map((e) => e.package));
    expect(withScripts.filter((p) => !named.has(p))).toEqual([]);
    const unreproduced = report.scripts.filter((e) => e.outcome === "unreproduced").map((e) => `${e.package}: ${e.effect.split(";")[0]}`);
    expect(unreproduced).toEqual(
      expect.arrayContaining([expect.stringMatching(/^ssl-cert: generates the snakeoil TLS key/), expect.stringMatching(/^python3\.11-minimal: byte-compiles Python modules/)]),
    );
    expect(unreproduced.every((u) => /^(ssl-cert|python3[.0-9]*(-minimal)?): /.test(u))).toBe(true);
    expect(report.packages.map((p) => p.name)).toEqual(expect.arrayContaining(SCRIPTED_PACKAGES));
  });

  test("the SBOM is valid SPDX 2.3 JSON naming every package with its purl and source", () => {
    const doc = JSON.parse(readFileSync(sbomFile, "utf8")) as { packages: Array<{ name: string; versionInfo: string; sourceInfo?: string; licenseDeclared: string; externalRefs?: Array<{ referenceLocator: string }> }> };
    expect(validateSpdx(doc)).toEqual([]);
    const curl = doc.packages.find((p) => p.name === "curl")!;
    expect(curl.externalRefs?.[0]?.referenceLocator).toBe(`pkg:deb/debian/curl@${encodeURIComponent(curl.versionInfo)}?arch=amd64&distro=debian-12`);
    expect(curl.sourceInfo).toMatch(/^built from the Debian source package curl /);
    expect(curl.licenseDeclared).toMatch(/curl/);
    const installed = execFileSync("dpkg-query", [`--admindir=${path.join(ours, "var/lib/dpkg")}`, "-W", "-f", "${Package}\\n"], { encoding: "utf8" }).trim().split("\n");
    expect(doc.packages.length).toBe(installed.length + 1);
  });
});

describe("inside Kiln's image", () => {
  test("dpkg --audit and apt-get check are clean", () => {
    expect(inChroot(ours, "dpkg --audit; echo audit=$?")).toBe("audit=0\n");
    expect(inChroot(ours, "apt-get check -qq; echo check=$?")).toBe("check=0\n");
  });

  test("a non-root user pings 127.0.0.1 (cap_net_raw, no setuid), where a copy without the capability cannot", () => {
    const out = inChroot(ours, "ping -c1 -W2 127.0.0.1 >/dev/null && echo ping=ok", { network: "isolated", user: "nobody:nogroup" });
    expect(out).toBe("ping=ok\n");
    // The control: the same binary without its xattr fails for the same user (the test can fail).
    const copy = path.join(ours, "tmp/ping-copy");
    execFileSync("cp", [path.join(ours, "usr/bin/ping"), copy]);
    expect(() => inChroot(ours, "/tmp/ping-copy -c1 -W2 127.0.0.1", { network: "isolated", user: "nobody:nogroup" })).toThrow();
    rmSync(copy);
  });

  test("apt-get autoremove, after removing curl, removes what it removes in mmdebstrap's tree", () => {
    const candidates = (root: string): string[] =>
      inChroot(root, "apt-get -qq remove -y curl >/dev/null 2>&1; apt-get -s autoremove | sed -n 's/^Remv \\([^ ]*\\) .*/\\1/p'").trim().split("\n").sort();
    const a = referenceTreeCopy();
    const b = kilnTreeCopy();
    const theirs = candidates(a);
    expect(theirs).toContain("libcurl4");
    expect(candidates(b)).toEqual(theirs);
  });

  test("curl, wget and Python verify a local TLS server whose CA is in the image's bundle, and refuse an unknown one", async () => {
    const work = mkdtempSync(path.join(os.tmpdir(), "kiln-tls-"));
    cleanup.push(work);
    const trusted = makeCa(work, "trusted");
    const stranger = makeCa(work, "stranger");
    // A package that adds the CA where update-ca-certificates looks for local certificates.
    const debs = tempDir("kiln-tls-debs-");
    cleanup.push(debs);
    const deb = buildDeb({ name: "kiln-test-ca", version: "1.0", arch: "all", depends: "ca-certificates", files: [{ path: "usr/local/share/ca-certificates/kiln-test-ca.crt", content: readFileSync(trusted.ca) }] }, debs);
    const layout = path.join(work, "oci");
    await kilnBuild(["--deb", deb, "--oci", layout, "--tag", "tls"]);
    const root = unpackImage(layout, "tls");
    cleanup.push(path.dirname(path.dirname(root)));
    expect(readFileSync(path.join(root, "etc/ssl/certs/ca-certificates.crt"), "utf8")).toContain(readFileSync(trusted.ca, "utf8").trim());

    const serve = async (ca: { key: string; cert: string }): Promise<{ port: number; close: () => Promise<void> }> => {
      const server = createServer({ key: readFileSync(ca.key), cert: readFileSync(ca.cert) }, (_req, res) => res.end("hello over TLS\n"));
      await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
      return { port: (server.address() as AddressInfo).port, close: () => new Promise((r) => server.close(() => r())) };
    };
    const good = await serve(trusted);
    const bad = await serve(stranger);
    try {
      const client = (port: number): Promise<string> =>
        new Promise((resolve) => {
          // The container runtime gives every container an /etc/hosts; the chroot needs one too.
          const script = `echo '127.0.0.1 localhost' > /etc/hosts; curl -sS https://localhost:${port}/ 2>&1; echo curl=$?; wget -q -O - https://localhost:${port}/ 2>&1; echo wget=$?; python3 -c "import urllib.request; print(urllib.request.urlopen('https://localhost:${port}/').read().decode().strip())" 2>&1 | tail -1`;
          // Asynchronously: the server answering is this process.
          execFile("unshare", ["-m", "--propagation", "private", "sh", "-c", `mount --rbind /dev "$1/dev"; mount -t proc proc "$1/proc"; exec chroot "$1" /usr/bin/env -i PATH=/usr/bin:/bin HOME=/root /bin/sh -c "$2"`, "x", root, script], { encoding: "utf8" }, (_err, stdout) => resolve(stdout));
        });
      expect(await client(good.port)).toBe("hello over TLS\ncurl=0\nhello over TLS\nwget=0\nhello over TLS\n");
      const refused = await client(bad.port);
      expect(refused).toMatch(/curl=60/);
      expect(refused).toMatch(/wget=5/);
      expect(refused).toMatch(/CERTIFICATE_VERIFY_FAILED/);
    } finally {
      await good.close();
      await bad.close();
    }
  });
});

function tryLink(p: string): string {
  try {
    return readlinkSync(p);
  } catch {
    return "(not a link)";
  }
}

/** Fresh copies for tests that change the tree (apt-get remove). */
function referenceTreeCopy(): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), "kiln-ref-copy-"));
  execFileSync("cp", ["-a", `${ref}/.`, dir]);
  cleanup.push(dir);
  return dir;
}
function kilnTreeCopy(): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), "kiln-ours-copy-"));
  execFileSync("cp", ["-a", `${ours}/.`, dir]);
  cleanup.push(dir);
  return dir;
}

/** A CA and a server certificate for localhost it signed, made with openssl. */
function makeCa(dir: string, name: string): { ca: string; key: string; cert: string } {
  const d = path.join(dir, name);
  mkdirSync(d);
  const o = (args: string[]): void => void execFileSync("openssl", args, { cwd: d, stdio: "ignore" });
  o(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", `/CN=Kiln test CA ${name}`, "-keyout", "ca.key", "-out", "ca.crt"]);
  o(["req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost", "-keyout", "server.key", "-out", "server.csr"]);
  writeFileSync(path.join(d, "ext.cnf"), "subjectAltName=DNS:localhost\nbasicConstraints=CA:FALSE\n");
  o(["x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial", "-days", "2", "-extfile", "ext.cnf", "-out", "server.crt"]);
  return { ca: path.join(d, "ca.crt"), key: path.join(d, "server.key"), cert: path.join(d, "server.crt") };
}
