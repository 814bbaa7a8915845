/**
 * `kiln build` end to end, as a user runs it (the compiled command), against the local bookworm
 * mirror served on loopback: the minbase image is unpacked by umoci and run in a chroot, skopeo
 * reads the docker-archive, builds are reproducible to the byte, layers are cached and shared.
 */
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildDeb, tempDir } from "../fixtures/debs.js";
import { MIRROR_DIR, ROOT } from "../helpers/global-setup.js";
import { runKiln, type KilnRun } from "../helpers/kiln-process.js";
import { MirrorServer } from "../helpers/mirror-server.js";
import { onlyGrows, progressLines } from "../helpers/progress-lines.js";

const OS = "Debian 12 x86_64";
let work: string;
let mirror: MirrorServer;
let config: string;

/** Runs the command (without blocking this process: the mirror it downloads from is served from here). */
function kiln(args: string[], env: Record<string, string> = {}): Promise<KilnRun> {
  return runKiln(args, { cwd: work, env: { KILN_DATA_DIR: path.join(work, "data"), SOURCE_DATE_EPOCH: "", ...env } });
}

/** Runs `kiln build` (quiet unless `progress`), expecting success. */
async function build(args: string[], env: Record<string, string> = {}, progress = false): Promise<{ digest: string; summary: string; stderr: string }> {
  const r = await kiln(["build", ...(progress ? [] : ["-q"]), "--config", config, "--os", OS, ...args], env);
  expect(r.status, `kiln build failed:\n${r.stderr}`).toBe(0);
  const m = /^(sha256:[0-9a-f]{64})\s+(.*)$/m.exec(r.stdout);
  expect(m, r.stdout).not.toBeNull();
  return { digest: m![1]!, summary: m![2]!, stderr: r.stderr };
}

/** Unpacks an OCI layout with umoci (a third-party reader) and returns the rootfs path. */
function unpack(layout: string, tag: string): string {
  const bundle = path.join(work, `bundle-${path.basename(layout)}-${tag.replace(/\W/g, "_")}`);
  rmSync(bundle, { recursive: true, force: true });
  execFileSync("umoci", ["unpack", "--image", `${layout}:${tag}`, bundle], { stdio: "pipe" });
  return path.join(bundle, "rootfs");
}

function inChroot(rootfs: string, script: string): string {
  return execFileSync("chroot", [rootfs, "/bin/sh", "-c", script], { encoding: "utf8", env: { PATH: "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", LANG: "C" } });
}

function layersOf(layout: string): string[] {
  const index = JSON.parse(readFileSync(path.join(layout, "index.json"), "utf8")) as { manifests: Array<{ digest: string }> };
  const manifest = JSON.parse(readFileSync(path.join(layout, "blobs/sha256", index.manifests[0]!.digest.slice(7)), "utf8")) as { layers: Array<{ digest: string }> };
  return manifest.layers.map((l) => l.digest);
}

beforeAll(async () => {
  work = tempDir("kiln-build-");
  mirror = await MirrorServer.start(MIRROR_DIR);
  config = path.join(work, "kiln.yaml");
  writeFileSync(
    config,
    `distributions:\n  - name: Debian\n    version: "12"\n    arch: x86_64\n    mirror: ${mirror.url}\n    suite: bookworm\n    components: [main]\n    keyring: none\n`,
  );
});
afterAll(async () => {
  await mirror?.close();
  if (work) rmSync(work, { recursive: true, force: true });
});

describe("kiln build", () => {
  let minbaseDigest: string;
  const minbaseLayout = (): string => path.join(work, "minbase");

  it("builds the bookworm minbase image, and it runs", async () => {
    const { digest, summary } = await build(["--oci", minbaseLayout(), "--tag", "minbase"]);
    minbaseDigest = digest;
    expect(summary).toMatch(/^88 packages, \d+ layers \(0 cached, \d+ written\)/);
    const rootfs = unpack(minbaseLayout(), "minbase");
    expect(inChroot(rootfs, "echo hello from $0")).toBe("hello from /bin/sh\n");
    expect(inChroot(rootfs, "echo 'a b c' | awk '{print $2}'")).toBe("b\n");
    const status = inChroot(rootfs, "dpkg-query -W -f '${Package} ${db:Status-Abbrev}|\\n'").trim().split("\n");
    expect(status).toHaveLength(88);
    expect(status.filter((l) => !/^\S+ ii \|$/.test(l))).toEqual([]);
    const expected = readFileSync(path.join(ROOT, "tools/minbase-bookworm.txt"), "utf8").split("\n").filter(Boolean).sort();
    expect(status.map((l) => l.split(" ")[0]).sort()).toEqual(expected);
    expect(inChroot(rootfs, "getent passwd root")).toBe("root:x:0:0:root:/root:/bin/bash\n");
    expect(inChroot(rootfs, "apt-get --version | head -1")).toMatch(/^apt 2\.6\.\d+ \(amd64\)/);
    // What the package scripts would have done, checked from inside.
    expect(inChroot(rootfs, "readlink /bin /usr/bin/awk /etc/alternatives/awk")).toBe("usr/bin\n/etc/alternatives/awk\n/usr/bin/mawk\n");
    expect(inChroot(rootfs, "stat -c %a /tmp")).toBe("1777\n");
    expect(inChroot(rootfs, "dpkg --verify && echo verified")).toBe("verified\n");
    expect(inChroot(rootfs, "ldconfig -p | grep -c 'libc.so.6 '")).toBe("1\n");
    expect(inChroot(rootfs, "id -u nobody && su -s /bin/sh nobody -c 'id -un'")).toBe("65534\nnobody\n");
    // The build mirror is unsigned (keyring: none): the image must not trust it for ever.
    expect(inChroot(rootfs, "cat /etc/apt/sources.list.d/debian.sources")).toBe(`Types: deb\nURIs: ${mirror.url}\nSuites: bookworm\nComponents: main\n`);
    // No --entrypoint: the image has a shell, so it runs one by default.
    const cfg = JSON.parse(execFileSync("skopeo", ["inspect", "--config", `oci:${minbaseLayout()}:minbase`], { encoding: "utf8" })) as { config: { Cmd?: string[]; Entrypoint?: string[] } };
    expect(cfg.config).toMatchObject({ Cmd: ["/bin/sh"] });
    expect(cfg.config.Entrypoint).toBeUndefined();
  });

  it("rebuilds from the layer cache, and skopeo reads the docker-archive", async () => {
    const tarFile = path.join(work, "minbase.tar");
    const { digest, summary } = await build(["--docker-archive", tarFile, "--tag", "minbase:12"]);
    expect(digest).toBe(minbaseDigest);
    expect(summary).toMatch(/\d+ layers \((\d+) cached, 0 written\)/);
    const inspect = JSON.parse(execFileSync("skopeo", ["inspect", `docker-archive:${tarFile}`], { encoding: "utf8" })) as { Architecture: string; Os: string; Layers: string[]; Created: string };
    expect(inspect.Architecture).toBe("amd64");
    expect(inspect.Os).toBe("linux");
    expect(inspect.Layers).toHaveLength(layersOf(minbaseLayout()).length);
    // The compressed archive, gunzipped, reads the same.
    const gz = path.join(work, "minbase.tar.gz");
    await build(["--docker-archive", gz, "--tag", "minbase:12"]);
    execFileSync("gunzip", ["-f", gz]);
    const again = JSON.parse(execFileSync("skopeo", ["inspect", `docker-archive:${gz.replace(/\.gz$/, "")}`], { encoding: "utf8" })) as { Layers: string[] };
    expect(again.Layers).toHaveLength(inspect.Layers.length);
  });

  it("is reproducible: a fresh data directory and --no-cache give the same bytes", async () => {
    const other = path.join(work, "minbase-again");
    const { digest, stderr } = await build(["--no-cache", "--oci", other, "--tag", "minbase"], { KILN_DATA_DIR: path.join(work, "data-2") }, true);
    expect(digest).toBe(minbaseDigest);
    // Not a terminal: a plain line for each phase, in order, with a percentage that only grows.
    const lines = progressLines(stderr);
    const phases = ["reading the package index", "resolving dependencies", "downloading", "unpacking", "configuring", "writing layers", "writing the image config", "writing the output"];
    const firstOf = phases.map((p) => lines.findIndex((l) => l.message.startsWith(p)));
    expect(firstOf.every((i) => i >= 0), stderr).toBe(true);
    expect(firstOf).toEqual([...firstOf].sort((a, b) => a - b));
    expect(onlyGrows(lines), JSON.stringify(lines)).toBe(true);
    expect(lines.at(-1)?.pct).toBe(100);
    expect(layersOf(other)).toEqual(layersOf(minbaseLayout()));
    for (const l of layersOf(other)) {
      const a = readFileSync(path.join(other, "blobs/sha256", l.slice(7)));
      const b = readFileSync(path.join(minbaseLayout(), "blobs/sha256", l.slice(7)));
      expect(a.equals(b)).toBe(true);
    }
    // One clock: SOURCE_DATE_EPOCH moves every timestamp, so the digest changes.
    const dated = await build(["--oci", path.join(work, "dated"), "--tag", "minbase"], { SOURCE_DATE_EPOCH: "1700000000" });
    expect(dated.digest).not.toBe(minbaseDigest);
    const cfg = JSON.parse(execFileSync("skopeo", ["inspect", "--config", `oci:${path.join(work, "dated")}:minbase`], { encoding: "utf8" })) as { created: string };
    expect(cfg.created).toBe("2023-11-14T22:13:20Z");
  });

  it("--no-cache rewrites every layer from the unpacked packages it has; --no-package-cache decompresses them again", async () => {
    const data = path.join(work, "data-unpack");
    const env = { KILN_DATA_DIR: data };
    const first = await build(["--oci", path.join(work, "unpack-1"), "--tag", "minbase"], env);
    expect(first.digest).toBe(minbaseDigest);
    const unpacked = path.join(data, "cache/unpacked");
    const manifests = (): Map<string, number> => new Map(readdirSync(unpacked).map((d) => [d, statSync(path.join(unpacked, d, "manifest.json")).ino]));
    const before = manifests();
    expect(before.size).toBeGreaterThan(80);

    const noCache = await build(["--no-cache", "--oci", path.join(work, "unpack-2"), "--tag", "minbase"], env);
    expect(noCache.digest).toBe(minbaseDigest);
    expect(noCache.summary).toMatch(/\d+ layers \(0 cached, \d+ written\)/);
    expect(manifests()).toEqual(before); // the same manifest files: nothing was decompressed again

    const fresh = await build(["--no-cache", "--no-package-cache", "--oci", path.join(work, "unpack-3"), "--tag", "minbase"], env);
    expect(fresh.digest).toBe(minbaseDigest);
    expect(fresh.summary).toMatch(/\d+ layers \(0 cached, \d+ written\)/);
    const after = manifests();
    expect([...after.keys()].sort()).toEqual([...before.keys()].sort());
    for (const [dir, ino] of after) expect(ino, dir).not.toBe(before.get(dir)); // every package unpacked anew
  }, 300_000);

  it("shares the base layers between images that share the base packages", async () => {
    const withJq = path.join(work, "with-jq");
    await build(["--packages", "jq", "--oci", withJq, "--tag", "jq"]);
    const base = layersOf(minbaseLayout());
    const mine = layersOf(withJq);
    // Every package layer of minbase is reused; only the fix-up layer differs, plus jq's.
    const shared = base.filter((d) => mine.includes(d));
    expect(shared.length).toBe(base.length - 1);
    expect(mine.length).toBeLessThanOrEqual(10);
  });

  it("builds a distroless image of jq alone, with its dependencies", async () => {
    const out = path.join(work, "jq-only");
    const { summary } = await build(["--profile", "none", "--packages", "jq", "--entrypoint", '["/usr/bin/jq"]', "--oci", out, "--tag", "jq"]);
    const index = readFileSync(path.join(MIRROR_DIR, "dists/bookworm/main/binary-amd64/Packages"), "utf8");
    const jqStanza = index.split("\n\n").find((s) => s.startsWith("Package: jq\n"))!;
    const deps = /^Depends: (.*)$/m.exec(jqStanza)![1]!.split(",").map((d) => d.trim().split(/[ (]/)[0]!);
    const rootfs = unpack(out, "jq");
    const installed = execFileSync("dpkg-query", ["--admindir", path.join(rootfs, "var/lib/dpkg"), "-W", "-f", "${Package}\n"], { encoding: "utf8" }).trim().split("\n");
    for (const d of ["jq", ...deps]) expect(installed).toContain(d);
    expect(installed.length).toBeLessThan(20);
    expect(summary).toMatch(new RegExp(`^${installed.length} packages`));
    expect(existsSync(path.join(rootfs, "bin/sh"))).toBe(false); // no shell in a distroless image
    const cfg = JSON.parse(execFileSync("skopeo", ["inspect", "--config", `oci:${out}:jq`], { encoding: "utf8" })) as { config: { Entrypoint: string[] } };
    expect(cfg.config.Entrypoint).toEqual(["/usr/bin/jq"]);
    const ran = execFileSync("chroot", [rootfs, "/usr/bin/jq", "-n", "[1,2,3] | add"], { encoding: "utf8" });
    expect(ran).toBe("6\n");
    // No base-passwd: root and the distroless nonroot user, so that uid 0 and 65532 have names.
    expect(readFileSync(path.join(rootfs, "etc/passwd"), "utf8")).toBe("root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n");
    expect(readFileSync(path.join(rootfs, "etc/group"), "utf8")).toBe("root:x:0:\nnonroot:x:65532:\n");
    expect(existsSync(path.join(rootfs, "etc/shadow"))).toBe(true);
    // Without --entrypoint and without a shell, no default command (Cmd ["/bin/sh"] could not run).
    // Without --tag, the image is named after its first package: umoci and skopeo find it by that name.
    const bare = path.join(work, "jq-bare");
    const { stderr } = await build(["--profile", "none", "--packages", "jq", "--oci", bare], {}, true);
    expect(stderr).toMatch(/note: the image has no \/bin\/sh, so it has no default command/);
    expect(stderr).toContain("note: the image is tagged jq:latest (--tag NAME to choose)");
    expect(existsSync(path.join(unpack(bare, "jq:latest"), "usr/bin/jq"))).toBe(true);
    const bareCfg = JSON.parse(execFileSync("skopeo", ["inspect", "--config", `oci:${bare}:jq:latest`], { encoding: "utf8" })) as { config?: { Cmd?: string[]; Entrypoint?: string[] } };
    expect(bareCfg.config?.Cmd).toBeUndefined();
    expect(bareCfg.config?.Entrypoint).toBeUndefined();
    // The docker-archive's RepoTags too (docker load names the image by them).
    const archive = path.join(work, "jq-bare.tar");
    await build(["--profile", "none", "--packages", "jq", "--docker-archive", archive]);
    const manifest = JSON.parse(execFileSync("tar", ["-xOf", archive, "manifest.json"], { encoding: "utf8" })) as Array<{ RepoTags: string[] }>;
    expect(manifest.map((m) => m.RepoTags)).toEqual([["jq:latest"]]);
  });

  it("installs Recommends only with --install-recommends", async () => {
    const installed = async (extra: string[]): Promise<string[]> => {
      const out = path.join(work, `libc6${extra.join("")}`);
      await build(["--profile", "none", "--packages", "libc6", ...extra, "--oci", out, "--tag", "c"]);
      const rootfs = unpack(out, "c");
      return execFileSync("dpkg-query", ["--admindir", path.join(rootfs, "var/lib/dpkg"), "-W", "-f", "${Package}\n"], { encoding: "utf8" }).trim().split("\n").sort();
    };
    // libc6 recommends libidn2-0, which depends on libunistring2.
    expect(await installed([])).toEqual(["gcc-12-base", "libc6", "libgcc-s1"]);
    expect(await installed(["--install-recommends"])).toEqual(["gcc-12-base", "libc6", "libgcc-s1", "libidn2-0", "libunistring2"]);
  });

  it("installs a local .deb with its dependencies from the distribution, reusing minbase's layers", async () => {
    const debDir = path.join(work, "debs");
    mkdirSync(debDir, { recursive: true });
    const deb = buildDeb(
      {
        name: "hello-kiln",
        version: "1.0",
        arch: "all",
        depends: "jq",
        files: [{ path: "usr/bin/hello-kiln", content: "#!/bin/sh\necho '{\"hello\":\"kiln\"}' | jq -r .hello\n", mode: 0o755 }],
        // Built today, as a bundle's package is: newer than every package of the distribution.
        sourceDateEpoch: Math.floor(Date.now() / 1000),
      },
      debDir,
    );
    const out = path.join(work, "local-deb");
    // No --tag: named after the local package.
    await build(["--deb", deb, "--oci", out]);
    // The package layers of minbase are the same blobs; only the fix-up layer differs.
    const base = layersOf(minbaseLayout());
    expect(base.filter((d) => layersOf(out).includes(d))).toHaveLength(base.length - 1);
    const rootfs = unpack(out, "hello-kiln:latest");
    expect(inChroot(rootfs, "hello-kiln")).toBe("kiln\n");
    expect(inChroot(rootfs, "dpkg-query -W -f '${Status}' hello-kiln jq")).toBe("install ok installedinstall ok installed");
  });

  it("reports what package scripts did: warnings, --report FILE, and --strict refusing with exit 3", async () => {
    const debDir = path.join(work, "debs-frob");
    mkdirSync(debDir, { recursive: true });
    const deb = buildDeb(
      {
        name: "hello-frob",
        version: "1.0",
        arch: "all",
        files: [{ path: "usr/share/hello-frob/README", content: "frob\n" }],
        controlFiles: { postinst: "#!/bin/sh\nset -e\nif [ \"$1\" = configure ]; then\n  adduser --system --group --home /var/lib/frob frob\n  frobnicate --init /var/lib/frob\nfi\n" },
      },
      debDir,
    );
    // Without --report: one warning per package, naming the effect.
    const plain = await build(["--deb", deb, "--oci", path.join(work, "frob"), "--tag", "frob"], {}, true);
    expect(plain.stderr).toMatch(/warning: hello-frob: not reproduced: postinst: runs `frobnicate --init \/var\/lib\/frob`, which Kiln does not know/);
    expect(plain.stderr.match(/^warning: /gm)).toHaveLength(1);
    // --report: the JSON document, and no warning.
    const reportFile = path.join(work, "frob-report.json");
    const withReport = await build(["--deb", deb, "--oci", path.join(work, "frob2"), "--tag", "frob", "--report", reportFile], {}, true);
    expect(withReport.stderr).not.toMatch(/^warning: /m);
    const report = JSON.parse(readFileSync(reportFile, "utf8")) as { digest: string; packages: Array<{ name: string; version: string; architecture: string }>; scripts: Array<{ package: string; script: string; outcome: string; effect: string }> };
    expect(Object.keys(report)).toEqual(["digest", "packages", "scripts"]);
    expect(report.digest).toBe(withReport.digest);
    expect(report.packages).toContainEqual({ name: "hello-frob", version: "1.0", architecture: "all" });
    expect(report.scripts.filter((e) => e.package === "hello-frob")).toEqual([
      { package: "hello-frob", script: "postinst", outcome: "emulated", effect: "adduser --system frob: creates the user frob (uid 100, gid 101, home /var/lib/frob, created) and its group (gid 101)" },
      { package: "hello-frob", script: "postinst", outcome: "unreproduced", effect: "runs `frobnicate --init /var/lib/frob`, which Kiln does not know" },
    ]);
    for (const e of report.scripts) expect(Object.keys(e)).toEqual(["package", "script", "outcome", "effect"]);
    // --strict: exit 3, no image written.
    const strictOut = path.join(work, "frob-strict");
    const strict = await kiln(["build", "-q", "--config", config, "--os", OS, "--deb", deb, "--oci", strictOut, "--strict"]);
    expect(strict.status).toBe(3);
    expect(strict.stderr).toMatch(/kiln: 1 script effect of hello-frob not reproduced \(--strict\): hello-frob postinst: runs `frobnicate/);
    expect(existsSync(strictOut)).toBe(false);
    // The account the script creates is in the image, as adduser makes it.
    const rootfs = unpack(path.join(work, "frob"), "frob");
    expect(inChroot(rootfs, "getent passwd frob; stat -c '%a %U:%G' /var/lib/frob")).toBe("frob:x:100:101::/var/lib/frob:/usr/sbin/nologin\n755 frob:frob\n");
  });

  it("fails with one clear line on bad input", async () => {
    const unknownOs = await kiln(["build", "--config", config, "--os", "Debian 99 x86_64", "--oci", path.join(work, "x")]);
    expect(unknownOs.status).toBe(1);
    expect(unknownOs.stderr).toMatch(/no distribution "Debian 99 x86_64".*offered: Debian 12 x86_64/);
    const twoOutputs = await kiln(["build", "--config", config, "--os", OS, "--oci", "a", "--docker-archive", "b.tar"]);
    expect(twoOutputs.status).toBe(1);
    expect(twoOutputs.stderr).toMatch(/exactly one output/);
    const missing = await kiln(["build", "-q", "--config", config, "--os", OS, "--profile", "none", "--packages", "no-such-package", "--oci", path.join(work, "y")]);
    expect(missing.status).toBe(1);
    expect(missing.stderr).toMatch(/no-such-package/);
    expect(missing.stderr).not.toMatch(/\n\s+at /); // no stack trace
    const badEntrypoint = await kiln(["build", "--config", config, "--os", OS, "--entrypoint", "/bin/sh -c", "--oci", path.join(work, "z")]);
    expect(badEntrypoint.status).toBe(1);
    expect(badEntrypoint.stderr).toMatch(/JSON array of strings/);
    const usage = await kiln(["build", "--oci", "x"]);
    expect(usage.status).toBe(2);
  });
});
