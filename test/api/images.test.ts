/**
 * Generation through the UForge API (flow steps 6–8): a bundle with an archive and a `.deb`,
 * generated as a Docker image, followed to complete, downloaded once with its one-time key, read
 * back by skopeo and umoci, and run in a chroot. Then the ways it can go wrong.
 */
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, readdirSync, readlinkSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import { gzipSync } from "node:zlib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildDeb, buildRawDeb, makeTar, tempDir } from "../fixtures/debs.js";
import { makeZip } from "../fixtures/zips.js";
import { errorMessage, jsonClient, startTestServer, xmlField, type JsonStatus, type TestServer } from "../helpers/api.js";
import { MIRROR_DIR } from "../helpers/global-setup.js";
import { validateSpdx } from "../helpers/spdx.js";

const NS = 'xmlns:ns0="http://www.usharesoft.com/uforge"';
const XML = { "content-type": "application/xml" };
let server: TestServer;
const api: ReturnType<typeof jsonClient>["api"] = (...args) => jsonClient(server, "alice").api(...args);
const waitFor: ReturnType<typeof jsonClient>["waitFor"] = (...args) => jsonClient(server, "alice").waitFor(...args);
let work: string;



async function upload(artifactUri: string, name: string, bytes: Buffer): Promise<void> {
  const res = await server.request({ method: "POST", url: `/api/${artifactUri}/bin/${name}`, user: "alice", headers: { "content-type": "application/octet-stream" }, payload: bytes });
  expect(res.statusCode, res.body).toBe(201);
}

/** A bundle with the given artifacts (name, settings, bytes) and a Debian 12 template. */
async function bundleWith(name: string, artifacts: Array<{ name: string; fields?: Record<string, unknown>; bytes: Buffer }>, rule?: string): Promise<{ bundleUri: string; templateUri: string }> {
  const b = await api<{ uri: string; bundleRestriction: { uri: string } }>("POST", "users/alice/mysoftware", { name, version: "1.0" });
  expect(b.status).toBe(201);
  for (const a of artifacts) {
    const created = await api<{ uri: string }>("POST", `${b.json.uri}/artifacts`, { name: a.name, ...a.fields });
    expect(created.status, JSON.stringify(created.json)).toBe(201);
    await upload(created.json.uri, a.name, a.bytes);
  }
  if (rule) expect((await api("PUT", b.json.bundleRestriction.uri, { restrictionRule: rule })).status).toBe(200);
  const t = await api<{ uri: string }>("POST", `${b.json.uri}/templates`, { distribution: { name: "Debian", version: "12", arch: "x86_64" } });
  expect(t.status, JSON.stringify(t.json)).toBe(201);
  return { bundleUri: b.json.uri, templateUri: t.json.uri };
}

async function generate(templateUri: string, image: Record<string, unknown>): Promise<{ uri: string; statusUri: string }> {
  const r = await api<{ uri: string; statusUri: string }>("POST", `${templateUri}/images`, image);
  expect(r.status, JSON.stringify(r.json)).toBe(201);
  expect(r.res.headers.location).toBe(`/api/${r.json.uri}`);
  return r.json;
}


async function tarGz(entries: Parameters<typeof makeTar>[0]): Promise<Buffer> {
  return gzipSync(await makeTar(entries));
}

beforeAll(async () => {
  work = tempDir("kiln-gen-");
  server = await startTestServer();
  await server.createUser("alice");
});
afterAll(async () => {
  await server?.close();
  if (work) rmSync(work, { recursive: true, force: true });
});

describe("generating a Docker image through the API", () => {
  let imageUri: string;
  let fileName: string;
  let download: Buffer;

  it("builds the bundle on Debian 12 and reports progress to complete", async () => {
    const hello = await tarGz([
      { name: "bin/", type: "directory", mode: 0o755 },
      { name: "bin/hello", content: '#!/bin/sh\necho "hello from $(cat /opt/hello/share/greeting) and $(hello-jq)"\n', mode: 0o755 },
      { name: "share/greeting", content: "the bundle" },
    ]);
    const debDir = path.join(work, "debs");
    mkdirSync(debDir, { recursive: true });
    const deb = buildDeb(
      { name: "hello-jq", version: "1.0", arch: "all", depends: "jq", files: [{ path: "usr/bin/hello-jq", content: "#!/bin/sh\necho '{\"a\":\"jq\"}' | jq -r .a\n", mode: 0o755 }] },
      debDir,
    );
    const { templateUri } = await bundleWith("hello", [
      { name: "hello.tar.gz", fields: { extract: true, installLocation: "/opt/hello" }, bytes: hello },
      { name: "hello-jq_1.0_all.deb", fields: { install: true, tag: "ospkg" }, bytes: execFileSync("cat", [deb]) },
      { name: "motd.txt", fields: { installLocation: "/etc/hello", params: "rights=0640;ownerGroup=root:adm" }, bytes: Buffer.from("welcome\n") },
      // Through the merged-/usr link: lands in /usr/bin, /bin (and /bin/sh) stay.
      { name: "hello-bin", fields: { installLocation: "/bin", params: "rights=0755" }, bytes: Buffer.from("#!/bin/sh\necho hello from /bin\n") },
    ]);
    const ticket = await generate(templateUri, { targetFormat: { name: "Docker" }, compress: true, entrypoint: '["/opt/hello/bin/hello"]' });
    imageUri = ticket.uri;
    const seen = new Set<string>();
    const final = await waitFor(ticket.statusUri, (s) => {
      if (s.message) seen.add(s.message.replace(/\d+\/\d+.*/, "n/m"));
      return s.complete || s.error || s.cancelled;
    });
    expect(final.error ? final.detailedErrorMsg : "").toBe("");
    expect(final).toMatchObject({ complete: true, percentage: 100 });
    // Polls every 100 ms catch the long phases; a short one (writing layers from a warm cache) may
    // fall between two polls. kiln-build.test.ts checks every phase message, in order.
    expect([...seen].some((m) => /downloading|unpacking/.test(m))).toBe(true);
  });

  it("describes the image, lists its packages, and hands out a one-time download key", async () => {
    const img = (await api<Record<string, unknown>>("GET", imageUri)).json;
    expect(img).toMatchObject({ name: "hello", version: "1.0", revision: 1, compress: true, fileName: "hello-1.0-docker.tar.gz", distributionName: "Debian 12 x86_64", entrypoint: '["/opt/hello/bin/hello"]', registeringName: "hello:1.0" });
    expect(img.targetFormat).toMatchObject({ name: "Docker" });
    expect(img.sha256sum).toMatch(/^[0-9a-f]{64}$/);
    expect(img.downloadKey).toMatch(/^[\w-]{22,}$/);
    expect(String(img.downloadUri)).toContain(`/downloads/hello-1.0-docker.tar.gz?downloadId=${img.downloadKey as string}`);
    fileName = img.fileName as string;
    // The XML form validates against the schema (the request helper checks it).
    const xml = await server.request({ method: "GET", url: `/api/${imageUri}`, user: "alice" });
    expect(xml.statusCode).toBe(200);
    expect(xmlField(xml.body, "fullName")).toBe("hello:1.0");

    const pkgs = (await api<{ total: number; imagePkgs: Array<{ native_from_distribution: boolean; pkg: { name: string; version: string; arch: string; pkgBuildDate?: string } }> }>("GET", String(img.pkgsUri))).json;
    const names = pkgs.imagePkgs.map((p) => p.pkg.name);
    expect(names).toEqual(expect.arrayContaining(["bash", "libc6", "jq", "libjq1", "libonig5", "hello-jq"]));
    expect(pkgs.total).toBe(88 + 4);
    expect(pkgs.imagePkgs.find((p) => p.pkg.name === "hello-jq")).toMatchObject({ native_from_distribution: false, pkg: { version: "1.0", arch: "all" } });
    expect(pkgs.imagePkgs.find((p) => p.pkg.name === "jq")!.native_from_distribution).toBe(true);
    // Each package's build date: the mtime dpkg-deb wrote in its .deb's first ar member header.
    const built = new Map(pkgs.imagePkgs.map((p) => [p.pkg.name, p.pkg.pkgBuildDate]));
    expect([...built].filter(([, d]) => d === undefined).map(([n]) => n)).toEqual([]);
    const jqDeb = readdirSync(path.join(MIRROR_DIR, "pool")).find((f) => f.startsWith("jq_"))!;
    const jqHead = readFileSync(path.join(MIRROR_DIR, "pool", jqDeb)).subarray(0, 68);
    expect(new Date(built.get("jq")!).getTime()).toBe(Number(jqHead.toString("latin1", 24, 36).trim()) * 1000);
    expect(new Date(built.get("hello-jq")!).getTime()).toBe(1_700_000_000_000); // buildDeb's SOURCE_DATE_EPOCH

    // Asked again, the unchanged image answers the same live key (not a new row per GET).
    expect((await api<Record<string, unknown>>("GET", imageUri)).json.downloadKey).toBe(img.downloadKey);
    // Without credentials, the key works once.
    const url = `/api/${String(img.downloadUri)}`;
    const head = await server.request({ method: "HEAD", url });
    expect(head.statusCode).toBe(200);
    expect(head.headers["content-length"]).toBe(String(img.fileSize));
    const first = await server.request({ method: "GET", url });
    expect(first.statusCode).toBe(200);
    expect(first.headers["content-disposition"]).toContain(`filename="${fileName}"`);
    expect(first.headers.etag).toBe(`"${img.sha256sum as string}"`);
    expect(first.headers["accept-ranges"]).toBe("bytes");
    download = first.rawPayload;
    expect(download.length).toBe(img.fileSize);
    const second = await server.request({ method: "GET", url });
    expect(second.statusCode).toBe(401);
    expect(errorMessage(second)).toMatch(/already used or expired/);
  });

  it("is a docker-archive that skopeo and umoci read, and its entrypoint runs", () => {
    const dir = path.join(work, "dl");
    mkdirSync(dir, { recursive: true });
    const gz = path.join(dir, fileName);
    writeFileSync(gz, download);
    execFileSync("gunzip", ["-f", gz]);
    const tar = gz.replace(/\.gz$/, "");
    const layout = path.join(dir, "oci");
    execFileSync("skopeo", ["copy", `docker-archive:${tar}`, `oci:${layout}:hello`], { stdio: "pipe" });
    const bundle = path.join(dir, "bundle");
    execFileSync("umoci", ["unpack", "--image", `${layout}:hello`, bundle], { stdio: "pipe" });
    const config = JSON.parse(execFileSync("skopeo", ["inspect", "--config", `oci:${layout}:hello`], { encoding: "utf8" })) as { config: { Entrypoint: string[] } };
    expect(config.config.Entrypoint).toEqual(["/opt/hello/bin/hello"]);
    const out = execFileSync("/usr/sbin/chroot", [path.join(bundle, "rootfs"), ...config.config.Entrypoint], { encoding: "utf8", env: { PATH: "/usr/bin:/bin" } });
    expect(out).toBe("hello from the bundle and jq\n");
    const motd = execFileSync("chroot", [path.join(bundle, "rootfs"), "stat", "-c", "%a %U %G", "/etc/hello/motd.txt"], { encoding: "utf8" });
    expect(motd).toBe("640 root adm\n");
    expect(readlinkSync(path.join(bundle, "rootfs", "bin"))).toBe("usr/bin");
    expect(execFileSync("/usr/sbin/chroot", [path.join(bundle, "rootfs"), "/bin/hello-bin"], { encoding: "utf8" })).toBe("hello from /bin\n");
  });

  it("serves byte ranges, and two requests with one key get the file once", async () => {
    const img = (await api<{ downloadUri: string; fileSize: number }>("GET", imageUri)).json;
    const url = `/api/${img.downloadUri}`;
    const [a, b] = await Promise.all([server.request({ method: "GET", url }), server.request({ method: "GET", url })]);
    expect([a.statusCode, b.statusCode].sort()).toEqual([200, 401]);
    const range = await server.request({ method: "GET", url: `/api/${imageUri}/downloads/${fileName}`, user: "alice", headers: { range: "bytes=10-29" } });
    expect(range.statusCode).toBe(206);
    expect(range.rawPayload.equals(download.subarray(10, 30))).toBe(true);
    const beyond = await server.request({ method: "GET", url: `/api/${imageUri}/downloads/${fileName}`, user: "alice", headers: { range: `bytes=${img.fileSize}-` } });
    expect(beyond.statusCode).toBe(416);
    const wrongName = await server.request({ method: "GET", url: `/api/${imageUri}/downloads/other.tar.gz`, user: "alice" });
    expect(wrongName.statusCode).toBe(404);
  });

  it("answers a stranger the same 401 for an existing image as for an unknown user or image", async () => {
    const existing = `/api/${imageUri}/downloads/${fileName}`;
    for (const query of ["", "?downloadId=not-a-key"]) {
      const reference = await server.request({ method: "GET", url: `${existing}${query}` });
      expect(reference.statusCode).toBe(401);
      for (const url of [existing.replace("/users/alice/", "/users/nosuch/"), existing.replace(/\/images\/\d+\//, "/images/99/")]) {
        const res = await server.request({ method: "GET", url: `${url}${query}` });
        expect(res.statusCode, url).toBe(401);
        expect(errorMessage(res)).toBe(errorMessage(reference));
      }
    }
  });

  it("regenerates after a bundle change reusing the cached base layers", async () => {
    const img = (await api<{ parentUri: string }>("GET", imageUri)).json;
    const again = await generate(img.parentUri, { targetFormat: { name: "Docker" }, compress: true, entrypoint: '["/opt/hello/bin/hello"]' });
    const s = await waitFor(again.statusUri);
    expect(s.complete).toBe(true);
    const second = (await api<{ revision: number }>("GET", again.uri)).json;
    expect(second.revision).toBe(2);
  });
});

describe("what Kiln did about the packages' scripts, and what the image holds", () => {
  it("says in the status that a script effect was not reproduced, serves the report and an SPDX 2.3 SBOM", async () => {
    const debDir = path.join(work, "debs-frob");
    mkdirSync(debDir, { recursive: true });
    const deb = buildDeb(
      {
        name: "hello-frob",
        version: "2.0",
        arch: "all",
        files: [{ path: "usr/share/doc/hello-frob/copyright", content: "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n\nFiles: *\nCopyright: 2026 Kiln tests\nLicense: GPL-2+ or Expat\n" }],
        controlFiles: { postinst: "#!/bin/sh\nset -e\nmkdir -p /var/lib/frob\nfrobnicate --init /var/lib/frob\n" },
      },
      debDir,
    );
    const { templateUri } = await bundleWith("frob", [{ name: "hello-frob_2.0_all.deb", fields: { install: true, tag: "ospkg" }, bytes: readFileSync(deb) }]);
    const ticket = await generate(templateUri, { targetFormat: { name: "Docker" }, compress: false });
    const status = await waitFor(ticket.statusUri);
    expect(status.complete, status.detailedErrorMsg).toBe(true);
    expect(status.message).toBe("complete; 1 package script effect was not reproduced (hello-frob): see the image's report");
    const img = { reportUri: `${ticket.uri}/report`, sbomUri: `${ticket.uri}/sbom` };

    const report = await server.request({ method: "GET", url: `/api/${img.reportUri}`, user: "alice" });
    expect(report.statusCode).toBe(200);
    expect(report.headers["content-type"]).toMatch(/^application\/json/);
    const r = JSON.parse(report.body) as { digest: string; packages: Array<{ name: string }>; scripts: Array<Record<string, string>> };
    expect(r.digest).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(r.packages.map((p) => p.name)).toContain("hello-frob");
    expect(r.scripts.filter((e) => e.package === "hello-frob")).toEqual([
      { package: "hello-frob", script: "postinst", outcome: "emulated", effect: "mkdir /var/lib/frob" },
      { package: "hello-frob", script: "postinst", outcome: "unreproduced", effect: "runs `frobnicate --init /var/lib/frob`, which Kiln does not know" },
    ]);

    const sbom = await server.request({ method: "GET", url: `/api/${img.sbomUri}`, user: "alice" });
    expect(sbom.statusCode).toBe(200);
    expect(sbom.headers["content-type"]).toBe("application/spdx+json");
    const doc = JSON.parse(sbom.body) as { spdxVersion: string; packages: Array<{ name: string; licenseDeclared: string; externalRefs?: Array<{ referenceLocator: string }> }> };
    expect(validateSpdx(doc)).toEqual([]);
    const frob = doc.packages.find((p) => p.name === "hello-frob")!;
    expect(frob.licenseDeclared).toBe("GPL-2.0-or-later OR MIT");
    expect(frob.externalRefs?.[0]?.referenceLocator).toBe("pkg:deb/debian/hello-frob@2.0?arch=all&distro=debian-12");
    expect(doc.packages.length).toBe(r.packages.length + 1);

    // Another user sees neither.
    await server.createUser("mallory");
    const theirs = await server.request({ method: "GET", url: `/api/${img.sbomUri}`, user: "mallory" });
    expect(theirs.statusCode).toBe(404);
  });

  it("answers 409 while an image is still generating", async () => {
    const { templateUri } = await bundleWith("slow", [{ name: "note.txt", bytes: Buffer.from("x\n") }]);
    const ticket = await generate(templateUri, { targetFormat: { name: "Docker" }, compress: false });
    const early = await server.request({ method: "GET", url: `/api/${ticket.uri}/report`, user: "alice" });
    const s = await waitFor(ticket.statusUri);
    // Either it was still generating (409, saying so) or it had already completed (200).
    if (early.statusCode === 409) expect(errorMessage(early)).toMatch(/still generating/);
    else expect(early.statusCode).toBe(200);
    expect(s.complete).toBe(true);
    expect(s.message).toBe("complete");
  });
});

describe("OpenShift images", () => {
  it("run as an arbitrary non-root user: group 0 owns and may write the install locations", async () => {
    const app = await tarGz([{ name: "run.sh", content: "#!/bin/sh\nid -u\n", mode: 0o750 }]);
    const { templateUri } = await bundleWith("ocp-app", [{ name: "app.tar.gz", fields: { extract: true }, bytes: app }]);
    const t = await generate(templateUri, { targetFormat: { name: "OpenShift" }, compress: true, entrypoint: '["/opt/ocp-app/run.sh"]' });
    expect((await waitFor(t.statusUri)).complete).toBe(true);
    const img = (await api<{ downloadUri: string; fileName: string }>("GET", t.uri)).json;
    expect(img.fileName).toBe("ocp-app-1.0-openshift.tar.gz");
    const dir = path.join(work, "ocp");
    mkdirSync(dir, { recursive: true });
    const dl = await server.request({ method: "GET", url: `/api/${img.downloadUri}` });
    writeFileSync(path.join(dir, "img.tar.gz"), dl.rawPayload);
    execFileSync("gunzip", ["-f", path.join(dir, "img.tar.gz")]);
    execFileSync("skopeo", ["copy", `docker-archive:${path.join(dir, "img.tar")}`, `oci:${path.join(dir, "oci")}:x`], { stdio: "pipe" });
    const config = JSON.parse(execFileSync("skopeo", ["inspect", "--config", `oci:${path.join(dir, "oci")}:x`], { encoding: "utf8" })) as { config: { User: string } };
    expect(config.config.User).toBe("1001:0");
    execFileSync("umoci", ["unpack", "--image", `${path.join(dir, "oci")}:x`, path.join(dir, "bundle")], { stdio: "pipe" });
    const rootfs = path.join(dir, "bundle", "rootfs");
    const stat = execFileSync("/usr/sbin/chroot", [rootfs, "stat", "-c", "%a %g", "/opt/ocp-app", "/opt/ocp-app/run.sh"], { encoding: "utf8" });
    expect(stat).toBe("775 0\n770 0\n");
    // An arbitrary uid in group 0 can run it and write next to it.
    const out = execFileSync("/usr/sbin/chroot", ["--userspec=123456:0", rootfs, "/bin/sh", "-c", "/opt/ocp-app/run.sh && touch /opt/ocp-app/state && echo wrote"], { encoding: "utf8" });
    expect(out).toBe("123456\nwrote\n");
  });
});

describe("what can go wrong", () => {
  it("refuses a format the restriction rule excludes, an unknown format and a bad entrypoint", async () => {
    const { templateUri } = await bundleWith("only-openshift", [{ name: "a.txt", bytes: Buffer.from("a") }], "TargetFormat#name=OpenShift");
    let r = await api("POST", `${templateUri}/images`, { targetFormat: { name: "Docker" }, compress: true });
    expect(r.status).toBe(400);
    expect(errorMessage(r.res)).toMatch(/restriction rule .*excludes Docker/);
    r = await api("POST", `${templateUri}/images`, { targetFormat: { name: "VMware" } });
    expect(r.status).toBe(400);
    expect(errorMessage(r.res)).toMatch(/unknown target format "VMware"/);
    r = await api("POST", `${templateUri}/images`, { targetFormat: { name: "OpenShift" }, entrypoint: "/bin/sh -c true" });
    expect(r.status).toBe(400);
    expect(errorMessage(r.res)).toMatch(/JSON array of strings/);
    const list = await api<{ total: number }>("GET", "users/alice/images");
    const before = list.json.total;
    r = await api("POST", `${templateUri}/images`, { targetFormat: { name: "OpenShift" }, entrypoint: '["/bin/true", 3]' });
    expect(r.status).toBe(400);
    expect((await api<{ total: number }>("GET", "users/alice/images")).json.total).toBe(before);
  });

  it("fails the build, naming the entry, for an archive holding ../etc/passwd", async () => {
    const evil = await tarGz([{ name: "../etc/passwd", content: "root::0:0::/:/bin/sh\n" }]);
    const { templateUri } = await bundleWith("evil", [{ name: "evil.tar.gz", fields: { extract: true, installLocation: "/opt/evil" }, bytes: evil }]);
    const t = await generate(templateUri, { targetFormat: { name: "Docker" }, compress: true });
    const s = await waitFor(t.statusUri);
    expect(s.error).toBe(true);
    expect(s.errorMessage).toMatch(/evil\.tar\.gz: entry \.\.\/etc\/passwd has a '\.\.' component/);
    const dl = await server.request({ method: "GET", url: `/api/${t.uri}/downloads`, user: "alice" });
    expect(dl.statusCode).toBe(409);
  });

  it("fails the build naming the entry for a zip holding ../, the device node of a bundle's package, and the artifact of a broken .deb — never a host path", async () => {
    const devDeb = await buildRawDeb(
      {
        control: { name: "mem-copy", version: "1", arch: "all" },
        entries: [{ name: "./", type: "directory" }, { name: "./dev/", type: "directory" }, { name: "./dev/mem", type: "character-device", devmajor: 1, devminor: 1, mode: 0o666 }],
      },
      path.join(work, "mem-copy_1_all.deb"),
    );
    const cases: Array<[string, Array<{ name: string; fields?: Record<string, unknown>; bytes: Buffer }>, RegExp]> = [
      ["zip", [{ name: "evil.zip", fields: { extract: true, installLocation: "/opt/evil" }, bytes: makeZip([{ name: "../../etc/cron.d/evil", content: "x" }]) }], /^archive evil\.zip: entry \.\.\/\.\.\/etc\/cron\.d\/evil has a '\.\.' component; refusing to unpack it$/],
      ["device", [{ name: "mem-copy_1_all.deb", fields: { install: true, tag: "ospkg" }, bytes: readFileSync(devDeb) }], /^artifact mem-copy_1_all\.deb: entry \/dev\/mem is a character device node; packages from outside the distribution may not create device nodes$/],
      ["broken deb", [{ name: "broken.deb", fields: { install: true, tag: "ospkg" }, bytes: Buffer.from("not an ar archive at all") }], /^artifact broken\.deb: not a valid Debian package: /],
    ];
    for (const [what, artifacts, message] of cases) {
      const { templateUri } = await bundleWith(`bad-${what.replace(/ /g, "-")}`, artifacts);
      const s = await waitFor((await generate(templateUri, { targetFormat: { name: "Docker" }, compress: true })).statusUri);
      expect(s.error, what).toBe(true);
      expect(s.errorMessage, what).toMatch(message);
      expect(`${s.errorMessage}\n${s.detailedErrorMsg}`, what).not.toContain(server.config.dataDir);
      expect(s.detailedErrorMsg, what).not.toMatch(/blobs\/sha256|internal error/);
    }
  });

  it("refuses to download an uncompressed image, and one still generating", async () => {
    const { templateUri } = await bundleWith("plain", [{ name: "a.txt", bytes: Buffer.from("a") }]);
    const t = await generate(templateUri, { targetFormat: { name: "Docker" }, compress: false });
    const early = await server.request({ method: "GET", url: `/api/${t.uri}/downloads`, user: "alice" });
    expect(early.statusCode).toBe(400);
    expect(errorMessage(early)).toMatch(/without compress=true/);
    await waitFor(t.statusUri);
    const t2 = await generate(templateUri, { targetFormat: { name: "Docker" }, compress: true });
    const during = await server.request({ method: "GET", url: `/api/${t2.uri}/downloads`, user: "alice" });
    expect([409, 200]).toContain(during.statusCode); // 200 only if it was already done
    if (during.statusCode === 409) expect(errorMessage(during)).toMatch(/still generating/);
    await waitFor(t2.statusUri);
  });

  it("cancels a running build within 2 s and removes its temporary files", async () => {
    // Incompressible bytes make the bundle layer slow to gzip: the build is caught running.
    const big = randomBytes(96 * 1024 * 1024);
    const { templateUri } = await bundleWith("cancel-me", [{ name: "big.bin", bytes: big }]);
    const t = await generate(templateUri, { targetFormat: { name: "OpenShift" }, compress: true });
    await waitFor(t.statusUri, (s) => (s.message ?? "").includes("layers") || s.complete || s.error);
    const started = Date.now();
    const res = await api<JsonStatus>("DELETE", t.statusUri);
    const elapsed = Date.now() - started;
    expect(res.status, JSON.stringify(res.json)).toBe(200);
    expect(res.json.cancelled).toBe(true);
    expect(elapsed).toBeLessThan(2000);
    const tmp = path.join(server.config.dataDir, "tmp", "jobs");
    expect(existsSync(tmp) ? readdirSync(tmp) : []).toEqual([]);
    const dl = await server.request({ method: "GET", url: `/api/${t.uri}/downloads`, user: "alice" });
    expect(dl.statusCode).toBe(409);
  });

  it("deletes an image and its file, and answers 404 afterwards", async () => {
    const { templateUri } = await bundleWith("deleteme", [{ name: "a.txt", bytes: Buffer.from("bye") }]);
    const t = await generate(templateUri, { targetFormat: { name: "Docker" }, compress: true });
    await waitFor(t.statusUri);
    const img = (await api<{ sha256sum: string }>("GET", t.uri)).json;
    const file = server.rt.deps.blobs.path(`sha256:${img.sha256sum}`);
    expect(existsSync(file)).toBe(true);
    expect((await api("DELETE", t.uri)).status).toBe(204);
    expect((await api("GET", t.uri)).status).toBe(404);
    expect((await server.request({ method: "GET", url: `/api/${t.uri}/downloads`, user: "alice" })).statusCode).toBe(404);
    expect(existsSync(file)).toBe(false);
  });

  it("keeps a file two images share until the last of them is deleted", async () => {
    const { templateUri } = await bundleWith("twice", [{ name: "a.txt", bytes: Buffer.from("same bytes") }]);
    const first = await generate(templateUri, { targetFormat: { name: "Docker" }, compress: true });
    expect((await waitFor(first.statusUri)).complete).toBe(true);
    const second = await generate(templateUri, { targetFormat: { name: "Docker" }, compress: true });
    expect((await waitFor(second.statusUri)).complete).toBe(true);
    const a = (await api<{ sha256sum: string }>("GET", first.uri)).json;
    const b = (await api<{ sha256sum: string; fileName: string }>("GET", second.uri)).json;
    // Builds are reproducible: the two generations made the same file, stored once.
    expect(b.sha256sum).toBe(a.sha256sum);
    const file = server.rt.deps.blobs.path(`sha256:${a.sha256sum}`);
    expect((await api("DELETE", first.uri)).status).toBe(204);
    expect(existsSync(file)).toBe(true);
    const dl = await server.request({ method: "GET", url: `/api/${second.uri}/downloads/${b.fileName}`, user: "alice" });
    expect(dl.statusCode).toBe(200);
    expect((await api("DELETE", second.uri)).status).toBe(204);
    expect(existsSync(file)).toBe(false);
  });

  it("lists every image and status of the user", async () => {
    const images = await api<{ total: number; images: Array<{ uri: string }> }>("GET", "users/alice/images");
    const statuses = await api<{ total: number; statuses: Array<{ complete: boolean }> }>("GET", "users/alice/images/status");
    expect(images.json.total).toBeGreaterThan(3);
    expect(statuses.json.total).toBe(images.json.total);
    const xml = await server.request({ method: "GET", url: "/api/users/alice/images/status", user: "alice" });
    expect(xml.statusCode).toBe(200);
    // Search criteria apply to these lists too.
    const page = await api<{ total: number; images: Array<{ dbId: number; name: string }> }>("GET", "users/alice/images?orderBy=dbId&descending=true&count=2&offset=1");
    expect(page.json.total).toBe(images.json.total);
    expect(page.json.images).toHaveLength(2);
    const ids = images.json.images.map((i) => (i as unknown as { dbId: number }).dbId).sort((a, b) => b - a);
    expect(page.json.images.map((i) => i.dbId)).toEqual(ids.slice(1, 3));
    const named = await api<{ total: number; images: Array<{ name: string }> }>("GET", `users/alice/images?query=${encodeURIComponent("name==*hello*;targetFormat.name==Docker,name==*hello*;targetFormat.name==OpenShift")}`);
    expect(named.json.total).toBeGreaterThan(0);
    expect(named.json.images.every((i) => i.name.includes("hello"))).toBe(true);
    expect((await api("GET", "users/alice/images?orderBy=secret")).status).toBe(400);
  });
});
