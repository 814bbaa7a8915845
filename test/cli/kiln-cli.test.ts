/**
 * `kiln` as a user runs it (the compiled command, as a child process) against a live server on
 * loopback: log in, create a bundle from a hammr file with a folder, an archive and a URL source,
 * make a template, generate with `--wait`, download (and resume a partial download), run the
 * image, publish it to a registry, and the ways it goes wrong — wrong password, unknown ids, bad
 * usage, every kind of bundle-file mistake, Ctrl-C — with their exit codes and one-line messages.
 */
import { execFile, execFileSync, spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";
import path from "node:path";
import { gzipSync } from "node:zlib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { KilnClient } from "../../src/sdk/index.js";
import { buildDeb, makeTar, tempDir } from "../fixtures/debs.js";
import { startTestServer, type TestServer } from "../helpers/api.js";
import { ROOT } from "../helpers/global-setup.js";
import { onlyGrows, progressLines } from "../helpers/progress-lines.js";
import { startRegistry, type TestRegistry } from "../helpers/registry.js";

const KILN = path.join(ROOT, "bin/kiln.js");
const PASSWORD = "alice-password";
const REGISTRY_PASSWORD = "registry-secret-pw";
let server: TestServer;
let registry: TestRegistry;
let files: http.Server;
let url: string;
let filesUrl: string;
let work: string;
let config: string;
let sdk: KilnClient;

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** The environment of a user with no Kiln variables set, whose config lives in `config`. */
function baseEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, XDG_CONFIG_HOME: config, ...extra };
  for (const k of ["KILN_URL", "KILN_USER", "KILN_PASSWORD", "KILN_PROFILE"]) if (!(k in extra)) delete env[k];
  return env;
}

/** Runs kiln without blocking this process (the server it talks to lives here). */
function kiln(args: string[], options: { input?: string; env?: Record<string, string>; cwd?: string } = {}): Promise<Run> {
  return new Promise((resolve) => {
    const child = execFile(process.execPath, [KILN, ...args], { cwd: options.cwd ?? work, env: baseEnv(options.env), encoding: "utf8", timeout: 180_000, maxBuffer: 16 << 20 }, (err, stdout, stderr) =>
      resolve({ code: err ? (typeof (err as { code?: unknown }).code === "number" ? ((err as { code: number }).code) : 1) : 0, stdout, stderr }),
    );
    child.stdin!.end(options.input ?? "");
  });
}

/** A run that must succeed. */
async function ok(args: string[], options: Parameters<typeof kiln>[1] = {}): Promise<Run> {
  const r = await kiln(args, options);
  expect(r.code, `kiln ${args.join(" ")} failed:\n${r.stderr}`).toBe(0);
  return r;
}

/** A failure ends with exactly one error line (after any progress lines), never a stack trace. */
function oneLine(r: Run): string {
  const lines = r.stderr.trim().split("\n").filter((l) => l !== "(add --help for usage)");
  const errors = lines.filter((l) => l.startsWith("kiln: "));
  expect(errors, r.stderr).toHaveLength(1);
  expect(lines.at(-1)).toBe(errors[0]);
  expect(r.stderr).not.toMatch(/^\s+at /m);
  return errors[0]!;
}

beforeAll(async () => {
  work = tempDir("kiln-cli-");
  config = path.join(work, "config");
  // The test registries listen on loopback, which publication refuses unless allowed.
  server = await startTestServer({ env: { KILN_PUBLISH_ALLOW: "127.0.0.1" } });
  await server.rt.app.listen({ port: 0, host: "127.0.0.1" });
  url = `http://127.0.0.1:${(server.rt.app.server.address() as AddressInfo).port}`;
  await server.createUser("alice", PASSWORD);
  registry = await startRegistry({ auth: "htpasswd", users: { alice: REGISTRY_PASSWORD } });
  files = http.createServer((req, res) => {
    if (req.url === "/notes.txt") res.writeHead(200, { "content-type": "text/plain" }).end("notes from a URL\n");
    else if (req.url === "/moved") res.writeHead(302, { location: "/notes.txt" }).end();
    else res.writeHead(404).end();
  });
  await new Promise<void>((r) => files.listen(0, "127.0.0.1", r));
  filesUrl = `http://127.0.0.1:${(files.address() as AddressInfo).port}`;
  sdk = new KilnClient({ url, user: "alice", password: PASSWORD });

  // The software: an archive with the program, a folder of configuration (with a subfolder), a licence.
  const src = path.join(work, "project", "src");
  mkdirSync(path.join(src, "conf", "sub"), { recursive: true });
  const program = "#!/bin/sh\ncat /etc/hello/conf/greeting.txt /etc/hello/conf/sub/deep.txt /usr/share/doc/hello/NOTES.txt\nstat -c '%a %n' /etc/hello/conf/app.conf\nstat -c '%s %n' /etc/hello/conf/empty.flag\n";
  writeFileSync(path.join(src, "hello.tar.gz"), gzipSync(await makeTar([{ name: "bin/", type: "directory" }, { name: "bin/hello", content: program, mode: 0o755 }])));
  writeFileSync(path.join(src, "conf", "app.conf"), "level=debug\n");
  writeFileSync(path.join(src, "conf", "greeting.txt"), "hello from the folder\n");
  writeFileSync(path.join(src, "conf", "empty.flag"), "");
  writeFileSync(path.join(src, "conf", "sub", "deep.txt"), "and from its subfolder\n");
  writeFileSync(path.join(work, "project", "LICENSE"), "MIT\n");
});

afterAll(async () => {
  sdk?.close();
  await server?.close();
  await registry?.stop();
  await new Promise((r) => files?.close(r));
  if (work) rmSync(work, { recursive: true, force: true });
});

function bundleYaml(extra = ""): string {
  return `name: hello
version: "1.0"
description: says hello
destination: /opt/hello
license:
  name: MIT
  source: LICENSE
restrictionRule: "Distribution#name=Debian"
files:
  - name: hello.tar.gz
    source: src/hello.tar.gz
    extract: true
  - name: conf
    source: src/conf
    destination: /etc/hello
    files:
      - name: app.conf
        source: src/conf/app.conf
        rights: "0640"
        ownerGroup: "root:root"
  - name: NOTES.txt
    source: ${filesUrl}/moved
    destination: /usr/share/doc/hello
${extra}`;
}

describe("logging in", () => {
  it("refuses a wrong password with exit 1 and saves nothing", async () => {
    const r = await kiln(["login", "--url", url, "--user", "alice", "--password-stdin"], { input: "wrong-password\n" });
    expect(r.code).toBe(1);
    expect(oneLine(r)).toBe("kiln: login failed: wrong user name or password");
    expect(existsSync(path.join(config, "kiln", "config.json"))).toBe(false);
  });

  it("is bad usage without a password or a server", async () => {
    const noPassword = await kiln(["login", "--url", url, "--user", "alice"]);
    expect(noPassword.code).toBe(2);
    expect(noPassword.stderr).toMatch(/--password-stdin/);
    const noServer = await kiln(["bundle", "list"]);
    expect(noServer.code).toBe(2);
    expect(noServer.stderr).toMatch(/no Kiln server configured: run kiln login/);
  });

  it("says what is wrong in a usage error as every failure does: kiln: ...", async () => {
    for (const args of [["image", "info"], ["image", "list", "--bogus"], ["frobnicate"]]) {
      const r = await kiln(args);
      expect(r.code, args.join(" ")).toBe(2);
      expect(r.stderr.split("\n")[0], args.join(" ")).toMatch(/^kiln: (required option '--id <id>' not specified|unknown option '--bogus'|unknown command 'frobnicate')$/);
    }
  });

  it("saves the profile with mode 0600 and uses it", async () => {
    const r = await ok(["login", "--url", url, "--user", "alice", "--password-stdin"], { input: `${PASSWORD}\n` });
    expect(r.stdout).toMatch(/^Logged in to http:\/\/127\.0\.0\.1:\d+ as alice; saved as profile "default"/);
    expect(r.stdout + r.stderr).not.toContain(PASSWORD);
    const file = path.join(config, "kiln", "config.json");
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(JSON.parse(readFileSync(file, "utf8"))).toEqual({ profiles: { default: { url, user: "alice", password: PASSWORD } } });
    const list = await ok(["bundle", "list"]);
    expect(list.stdout).toMatch(/No bundles yet/);
  });

  it("reads a password typed on a terminal without echoing it", async () => {
    const command = `${process.execPath} ${KILN} login --url ${url} --user alice --password-stdin --profile typed`;
    const child = spawn("script", ["-qefc", command, "/dev/null"], { cwd: work, env: baseEnv(), stdio: ["pipe", "pipe", "pipe"] });
    let out = "";
    child.stdout.on("data", (d: Buffer) => (out += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
    // Typed once the prompt is there, as a person would.
    await new Promise<void>((resolve) => {
      const poll = setInterval(() => {
        if (out.includes("password: ")) {
          clearInterval(poll);
          resolve();
        }
      }, 20);
    });
    child.stdin.write(`${PASSWORD}\r`);
    expect(await exited, out).toBe(0);
    expect(out).toMatch(/Logged in to .* as alice; saved as profile "typed"/);
    expect(out).not.toContain(PASSWORD);
  });

  it("logs in with an API key pair into a named profile; the environment overrides a profile", async () => {
    const key = await sdk.apiKeys.create({ name: "cli" });
    await ok(["login", "--url", `${url}/api/`, "--user", "alice", "--api-key", key.publicKey!, "--secret-stdin", "--profile", "ci"], { input: key.secretKey! });
    const saved = JSON.parse(readFileSync(path.join(config, "kiln", "config.json"), "utf8")) as { profiles: Record<string, Record<string, string>> };
    expect(saved.profiles.ci).toEqual({ url, user: "alice", apiKey: key.publicKey, secret: key.secretKey });
    expect((await ok(["os", "list", "--profile", "ci"])).stdout).toMatch(/Debian 12 x86_64/);
    // Writes are signed for their method (the server refuses a URL-only signature for them).
    const created = await ok(["account", "create", "--type", "docker", "--name", "by-key", "--endpoint", "https://registry.example.com", "--login", "alice", "--password-stdin", "--profile", "ci", "--json"], { input: "pw" });
    const accountId = (JSON.parse(created.stdout) as { dbId: number }).dbId;
    await ok(["account", "delete", "--id", String(accountId), "--profile", "ci"]);
    const unknownProfile = await kiln(["os", "list", "--profile", "nope"]);
    expect(unknownProfile.code).toBe(2);
    expect(unknownProfile.stderr).toMatch(/no profile "nope"/);
    // No profile at all: the environment is enough; a wrong KILN_PASSWORD wins over the profile.
    const bare = await ok(["os", "list", "--json"], { env: { XDG_CONFIG_HOME: path.join(work, "empty"), KILN_URL: url, KILN_USER: "alice", KILN_PASSWORD: PASSWORD } });
    expect((JSON.parse(bare.stdout) as { total: number }).total).toBe(1);
    const wrong = await kiln(["bundle", "list"], { env: { KILN_PASSWORD: "not-it" } });
    expect(wrong.code).toBe(1);
    expect(oneLine(wrong)).toBe("kiln: wrong user name or password (check your credentials: kiln login, or KILN_USER/KILN_PASSWORD)");
  });
});

describe("bundle files", () => {
  const cases: Array<[string, string, RegExp]> = [
    ["no name", 'version: "1"\nfiles: []\n', /bundle\.yml: there is no attribute \[name\] for the bundle$/],
    ["no version", "name: x\nfiles: []\n", /there is no attribute \[version\] for the bundle$/],
    ["no files", 'name: x\nversion: "1"\n', /there is no attribute \[files\] for the bundle$/],
    ["a file without name", 'name: x\nversion: "1"\nfiles:\n  - source: a.txt\n', /files\[0\]: there is no attribute \[name\]$/],
    ["a file without source", 'name: x\nversion: "1"\nfiles:\n  - name: a.txt\n', /files\[0\] \(a\.txt\): there is no attribute \[source\]$/],
    ["bootOrder off a bootscript", 'name: x\nversion: "1"\nfiles:\n  - name: a.sh\n    source: a.txt\n    bootOrder: 1\n', /files\[0\] \(a\.sh\): \[bootOrder\] or \[bootType\] is set but the file is not tagged bootscript$/],
    ["rights on an ospkg", 'name: x\nversion: "1"\nfiles:\n  - name: a.deb\n    source: a.txt\n    tag: ospkg\n    rights: "0755"\n', /\[ownerGroup\], \[rights\] or \[symlink\] is set but the file is not tagged softwarefile$/],
    ["an ospkg below the first level", 'name: x\nversion: "1"\nfiles:\n  - name: d\n    source: dir\n    files:\n      - name: a.deb\n        source: a.txt\n        tag: ospkg\n', /files\[0\]\.files\[0\] \(a\.deb\): a file tagged ospkg must be in the first level files section$/],
    ["nested files under a file", 'name: x\nversion: "1"\nfiles:\n  - name: a.txt\n    source: a.txt\n    files:\n      - name: b\n        source: a.txt\n', /files\[0\] \(a\.txt\): the list of files is not empty but \[source\] a\.txt is not a folder$/],
    ["nested files under a bootscript", 'name: x\nversion: "1"\nfiles:\n  - name: d\n    source: dir\n    tag: bootscript\n    files:\n      - name: b\n        source: a.txt\n', /the list of files is not empty but the file is not tagged softwarefile$/],
    ["rights that are not octal", 'name: x\nversion: "1"\nfiles:\n  - name: a.txt\n    source: a.txt\n    rights: rwx\n', /files\[0\] \(a\.txt\): rights must be octal permissions such as 0755, got "rwx"$/],
    ["a bad restriction rule", 'name: x\nversion: "1"\nrestrictionRule: "Distribution#name=="\nfiles: []\n', /\[restrictionRule\]: /],
    ["broken YAML", "name: [x\n", /bundle\.yml is not valid YAML/],
  ];

  it.each(cases)("validate names %s with exit 1", async (_what, text, message) => {
    const dir = path.join(work, "bad", String(cases.findIndex((c) => c[1] === text)));
    mkdirSync(path.join(dir, "dir"), { recursive: true });
    writeFileSync(path.join(dir, "a.txt"), "a\n");
    writeFileSync(path.join(dir, "bundle.yml"), text);
    const r = await kiln(["bundle", "validate", "--file", path.join(dir, "bundle.yml")]);
    expect(r.code, r.stderr).toBe(1);
    expect(oneLine(r)).toMatch(/^kiln: /);
    expect(r.stderr.trim()).toMatch(message);
  });

  it("validates a good file, in YAML and in JSON", async () => {
    const yml = path.join(work, "project", "bundle.yml");
    writeFileSync(yml, bundleYaml());
    const r = await ok(["bundle", "validate", "--file", yml]);
    expect(r.stdout).toMatch(/^OK: the bundle file .*bundle\.yml is valid \(hello 1\.0, 6 files,/);
    const json = path.join(work, "project", "bundle.json");
    writeFileSync(json, JSON.stringify({ name: "j", version: "1", files: [{ name: "app.conf", source: "src/conf/app.conf", tag: "softwarefile", symlink: "/usr/bin/app" }] }));
    await ok(["bundle", "validate", "--file", json]);
  });
});

describe("from a bundle file to a published image", () => {
  let bundleId: number;
  let templateId: number;
  let imageId: number;
  let imageFile: string;
  let accountId: number;

  it("creates the bundle, uploading a folder, an archive and a URL", async () => {
    const r = await ok(["bundle", "create", "--file", "project/bundle.yml"]);
    const m = /^Created bundle (\d+) "hello" 1\.0 with 6 files$/m.exec(r.stdout);
    expect(m, r.stdout).not.toBeNull();
    bundleId = Number(m![1]);
    // Not a terminal: plain progress lines for the one archive (hammr's way), no bar.
    expect(r.stderr).toMatch(/uploading the archive of hello \(6 files\): 100% /);
    expect(r.stderr).not.toMatch(/\u001b\[/);

    const info = JSON.parse((await ok(["bundle", "info", "--id", String(bundleId), "--json"])).stdout) as {
      defaultInstallLocation: string;
      license: { name: string };
      bundleRestriction: { restrictionRule: string };
      softwareArtifacts: Array<{ name: string; type: string; extract: boolean; installLocation?: string; uploaded?: boolean; subSoftwareArtifacts?: Array<{ name: string; type: string; params?: string; uploaded?: boolean; subSoftwareArtifacts?: Array<{ name: string }> }> }>;
    };
    expect(info).toMatchObject({ defaultInstallLocation: "/opt/hello", license: { name: "MIT" }, bundleRestriction: { restrictionRule: "Distribution#name=Debian" } });
    const [archive, folder, notes] = info.softwareArtifacts;
    expect(archive).toMatchObject({ name: "hello.tar.gz", type: "file", extract: true, uploaded: true });
    expect(folder).toMatchObject({ name: "conf", type: "folder", installLocation: "/etc/hello" });
    expect(folder!.subSoftwareArtifacts!.map((a) => a.name)).toEqual(["app.conf", "empty.flag", "greeting.txt", "sub"]);
    expect(folder!.subSoftwareArtifacts![0]).toMatchObject({ params: "ownerGroup=root:root;rights=0640", uploaded: true });
    expect(folder!.subSoftwareArtifacts![1]).toMatchObject({ name: "empty.flag", uploaded: true, size: 0 });
    expect(folder!.subSoftwareArtifacts![3]).toMatchObject({ type: "folder", subSoftwareArtifacts: [{ name: "deep.txt" }] });
    expect(notes).toMatchObject({ name: "NOTES.txt", uploaded: true, installLocation: "/usr/share/doc/hello" });
    const table = (await ok(["bundle", "list"])).stdout;
    expect(table).toMatch(/^ID\s+NAME\s+VERSION/);
    expect(table).toMatch(new RegExp(`^${bundleId}\\s+hello\\s+1\\.0\\s+/opt/hello`, "m"));
  });

  it("leaves no half-made bundle when an upload fails", async () => {
    const yml = path.join(work, "project", "broken-url.yml");
    writeFileSync(yml, `name: broken\nversion: "1"\nfiles:\n  - name: a.conf\n    source: src/conf/app.conf\n  - name: gone.txt\n    source: ${filesUrl}/gone.txt\n`);
    const r = await kiln(["bundle", "create", "--file", yml]);
    expect(r.code).toBe(1);
    expect(oneLine(r)).toBe(`kiln: bundle broken was not created: cannot download ${filesUrl}/gone.txt: HTTP 404`);
    expect((await sdk.bundles.list()).mySoftwareList?.map((b) => b.name)).toEqual(["hello"]);
  });

  it("makes a template on Debian 12", async () => {
    const r = await ok(["template", "create", "--bundle", String(bundleId), "--os", "debian 12 x86_64"]);
    const m = /^Created template (\d+) of bundle \d+ on Debian 12 x86_64 \(formats: Docker, OpenShift\)$/m.exec(r.stdout);
    expect(m, r.stdout).not.toBeNull();
    templateId = Number(m![1]);
    expect((await ok(["template", "list"])).stdout).toMatch(new RegExp(`^${templateId}\\s+${bundleId}\\s+hello\\s+1\\.0\\s+Debian 12 x86_64`, "m"));
    const wrongOs = await kiln(["template", "create", "--bundle", String(bundleId), "--os", "Debian 99 x86_64"]);
    expect(wrongOs.code).toBe(1);
    expect(oneLine(wrongOs)).toBe('kiln: no distribution "Debian 99 x86_64" on this server; it offers "Debian 12 x86_64" (kiln os list)');
  });

  it("generates with --wait, showing progress lines, and describes the image", async () => {
    const r = await ok(["image", "generate", "--template", String(templateId), "--format", "docker", "--entrypoint", '["/opt/hello/bin/hello"]', "--wait"]);
    const m = /^Generated image (\d+): hello:1\.0, (hello-1\.0-docker\.tar\.gz) \(/m.exec(r.stdout);
    expect(m, r.stdout + r.stderr).not.toBeNull();
    imageId = Number(m![1]);
    imageFile = m![2]!;
    // Plain lines (not a terminal): a phase per poll, percentages that only grow, ending complete.
    // Which phases a poll catches depends on timing, so only their shape and order are checked.
    const lines = progressLines(r.stderr);
    expect(lines.length, r.stderr).toBeGreaterThan(1);
    expect(onlyGrows(lines), JSON.stringify(lines)).toBe(true);
    expect(lines.at(-1)).toEqual({ pct: 100, message: "complete" });

    expect((await ok(["image", "list"])).stdout).toMatch(new RegExp(`^${imageId}\\s+hello\\s+1\\.0\\s+Docker\\s+complete\\s+[\\d.]+ MiB\\s+${templateId}\\s+${bundleId}`, "m"));
    expect((await ok(["image", "status", "--id", String(imageId)])).stdout.trim()).toBe(`image ${imageId}: complete`);
    const info = JSON.parse((await ok(["image", "info", "--id", String(imageId), "--json"])).stdout) as { registeringName: string; entrypoint: string };
    expect(info).toMatchObject({ registeringName: "hello:1.0", entrypoint: '["/opt/hello/bin/hello"]' });
    const pkgs = (await ok(["image", "pkgs", "--id", String(imageId)])).stdout;
    expect(pkgs).toMatch(/^bash\s+5\.\S+\s+amd64\s+distribution$/m);
  });

  it("downloads the image, resumes a partial download, and the image runs", async () => {
    const r = await ok(["image", "download", "--id", String(imageId)]);
    expect(r.stdout.trim()).toMatch(new RegExp(`^Downloaded ${path.join(work, imageFile).replace(/[.]/g, "\\.")} \\([\\d.]+ MiB, sha256 [0-9a-f]{64}\\)$`));
    const whole = readFileSync(path.join(work, imageFile));
    const img = await sdk.images.get(await sdk.images.find(imageId));
    expect(createHash("sha256").update(whole).digest("hex")).toBe(img.sha256sum);
    expect((await ok(["image", "download", "--id", String(imageId)])).stdout).toMatch(/is already downloaded/);

    // An interrupted download left half the bytes: the next run asks only for the rest.
    const out = path.join(work, "again", "image.tar.gz");
    mkdirSync(path.dirname(out), { recursive: true });
    const half = Math.floor(whole.length / 2);
    writeFileSync(`${out}.part`, whole.subarray(0, half));
    const resumed = await ok(["image", "download", "--id", String(imageId), "--output", out, "--json"]);
    expect(JSON.parse(resumed.stdout)).toMatchObject({ file: out, size: whole.length, resumedFrom: half, sha256: img.sha256sum });
    expect(readFileSync(out).equals(whole)).toBe(true);
    expect(existsSync(`${out}.part`)).toBe(false);

    // The image runs: the archive's program reads the folder's files and the downloaded notes.
    const dir = path.join(work, "run");
    mkdirSync(dir, { recursive: true });
    execFileSync("sh", ["-c", `gunzip -c "$1" > "$2"`, "sh", out, path.join(dir, "image.tar")]);
    execFileSync("skopeo", ["copy", `docker-archive:${path.join(dir, "image.tar")}`, `oci:${path.join(dir, "oci")}:hello`], { stdio: "pipe" });
    execFileSync("umoci", ["unpack", "--image", `${path.join(dir, "oci")}:hello`, path.join(dir, "bundle")], { stdio: "pipe" });
    const output = execFileSync("/usr/sbin/chroot", [path.join(dir, "bundle", "rootfs"), "/opt/hello/bin/hello"], { encoding: "utf8", env: { PATH: "/usr/bin:/bin" } });
    expect(output).toBe("hello from the folder\nand from its subfolder\nnotes from a URL\n640 /etc/hello/conf/app.conf\n0 /etc/hello/conf/empty.flag\n");
  });

  it("adds a registry account with the password on standard input", async () => {
    const r = await ok(["account", "create", "--type", "docker", "--name", "local", "--endpoint", registry.url, "--login", "alice", "--password-stdin"], { input: `${REGISTRY_PASSWORD}\n` });
    const m = /^Created docker account (\d+) "local" \(http:\/\/127\.0\.0\.1:\d+\)$/m.exec(r.stdout);
    expect(m, r.stdout).not.toBeNull();
    accountId = Number(m![1]);
    expect((await ok(["account", "list"])).stdout).toMatch(new RegExp(`^${accountId}\\s+local\\s+docker\\s+${registry.url.replace(/[.]/g, "\\.")}\\s+alice$`, "m"));
    const noSecret = await kiln(["account", "create", "--type", "docker", "--name", "x", "--endpoint", registry.url, "--login", "alice"]);
    expect(noSecret.code).toBe(2);
    // OpenShift: a registry URL and a token, from the environment this time.
    const ocp = await ok(["account", "create", "--type", "openshift", "--name", "ocp", "--registry", "https://registry.apps.example.com", "--json"], { env: { KILN_REGISTRY_TOKEN: "sha256~token" } });
    const acct = JSON.parse(ocp.stdout) as { dbId: number; xsiType: string; registryUrl: string; token?: string };
    expect(acct).toMatchObject({ xsiType: "CredAccountOpenShift", registryUrl: "https://registry.apps.example.com" });
    expect(acct.token).toBeUndefined();
    expect((await ok(["account", "list"])).stdout).toMatch(new RegExp(`^${acct.dbId}\\s+ocp\\s+openshift\\s+https://registry\\.apps\\.example\\.com\\s+-$`, "m"));
    await ok(["account", "delete", "--id", String(acct.dbId)]);
  });

  it("publishes with --wait; the registry has the image", async () => {
    const r = await ok(["image", "publish", "--id", String(imageId), "--account", String(accountId), "--namespace", "team", "--repository", "hello", "--tag", "1.0", "--wait"]);
    expect(r.stdout).toMatch(new RegExp(`^Published image ${imageId} to ${registry.host.replace(/[.]/g, "\\.")}/team/hello:1\\.0 \\(sha256:[0-9a-f]{64}\\)$`, "m"));
    const digest = /\((sha256:[0-9a-f]{64})\)/.exec(r.stdout)![1];
    const inspect = JSON.parse(execFileSync("skopeo", ["inspect", "--tls-verify=false", `--creds=alice:${REGISTRY_PASSWORD}`, `docker://${registry.host}/team/hello:1.0`], { encoding: "utf8" })) as { Digest: string };
    expect(inspect.Digest).toBe(digest);

    const list = (await ok(["publish", "list"])).stdout;
    const m = new RegExp(`^(\\d+)\\s+${imageId}\\s+${registry.host.replace(/[.]/g, "\\.")}/team/hello:1\\.0\\s+complete`, "m").exec(list);
    expect(m, list).not.toBeNull();
    const pubId = m![1]!;
    expect((await ok(["publish", "status", "--id", pubId])).stdout).toMatch(/^Status:\s+complete$/m);
    const cancel = await kiln(["publish", "cancel", "--id", pubId]);
    expect(cancel.code).toBe(1);
    expect(oneLine(cancel)).toMatch(/^kiln: publication \d+ has already completed; there is nothing to cancel$/);
    await ok(["publish", "delete", "--id", pubId]);
    expect((await ok(["publish", "list", "--json"])).stdout).toMatch(/"total": 0/);
  });

  it("cancels a build on Ctrl-C when there is no terminal, exiting 130", async () => {
    const child = spawn(process.execPath, [KILN, "image", "generate", "--template", String(templateId), "--format", "OpenShift", "--no-compress", "--wait"], { cwd: work, env: baseEnv(), stdio: ["pipe", "pipe", "pipe"] });
    child.stdin.end();
    let stderr = "";
    let stdout = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
    const progressing = new Promise<void>((resolve) => {
      child.stderr.on("data", (d: Buffer) => {
        stderr += d.toString();
        if (/^\[\s*\d+%\]/m.test(stderr)) resolve();
      });
    });
    await Promise.race([progressing, exited.then((code) => expect.fail(`kiln exited (${code}) before any progress:\n${stderr}${stdout}`))]);
    child.kill("SIGINT");
    expect(await exited, stderr + stdout).toBe(130);
    expect(stderr).toMatch(/Cancelling the build\.\.\.\nCancelled the build\.\n$/);
    const id = Number(/Generating image (\d+)/.exec(stderr)![1]);
    expect((await ok(["image", "status", "--id", String(id)])).stdout.trim()).toBe(`image ${id}: cancelled`);
    await ok(["image", "delete", "--id", String(id)]);
  });
  it("on a terminal, Ctrl-C asks before cancelling; no leaves the build running", async () => {
    // `script` gives the command a pseudo-terminal; ETX written to it is the user's Ctrl-C.
    // `exec`: without it the shell `script` starts stays in the foreground group, gets the same
    // SIGINT, and dies of it once kiln has exited — turning kiln's 0 into script's 130.
    const command = `exec ${process.execPath} ${KILN} image generate --template ${templateId} --format OpenShift --no-compress --wait`;
    const child = spawn("script", ["-qefc", command, "/dev/null"], { cwd: work, env: { ...baseEnv(), TERM: "xterm" }, stdio: ["pipe", "pipe", "pipe"] });
    let out = "";
    const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
    const waiters: Array<() => void> = [];
    child.stdout.on("data", (d: Buffer) => {
      out += d.toString();
      for (const w of waiters.splice(0)) w();
    });
    const seen = (re: RegExp): Promise<void> =>
      Promise.race([
        exited.then((code) => expect.fail(`script exited (${code}) before ${re}:\n${out}`)),
        new Promise<void>((resolve) => {
          const check = (): void => (re.test(out) ? resolve() : void waiters.push(check));
          check();
        }),
      ]);
    await seen(/\d+% \|/);
    child.stdin.write("\x03");
    await seen(/Cancel the build\? \[y\/N\]/);
    child.stdin.write("n\r");
    expect(await exited, out).toBe(0);
    expect(out, JSON.stringify(out)).toMatch(/Detached: the build goes on\. Follow it with: kiln image status --id (\d+)/);
    const id = Number(/--id (\d+)/.exec(out.slice(out.indexOf("Detached")))![1]);
    expect((await sdk.images.status(await sdk.images.find(id))).cancelled).not.toBe(true);
    await ok(["image", "delete", "--id", String(id)]);
  });
});

describe("what goes wrong, said in one line", () => {
  it("a build that fails ends --wait with exit 1 and the build's error", async () => {
    const dir = path.join(work, "broken-deb");
    mkdirSync(dir, { recursive: true });
    const deb = buildDeb({ name: "needs-nothing-real", version: "1.0", arch: "all", depends: "no-such-package-anywhere" }, dir);
    writeFileSync(path.join(dir, "bundle.yml"), `name: broken-deb\nversion: "1"\nfiles:\n  - name: ${path.basename(deb)}\n    source: ${path.basename(deb)}\n    tag: ospkg\n    install: true\n`);
    const created = await ok(["bundle", "create", "--file", path.join(dir, "bundle.yml"), "--json"]);
    const bundleId = (JSON.parse(created.stdout) as { dbId: number }).dbId;
    const t = await ok(["template", "create", "--bundle", String(bundleId), "--os", "Debian 12 x86_64", "--json"]);
    const templateId = (JSON.parse(t.stdout) as { dbId: number }).dbId;
    const r = await kiln(["image", "generate", "--template", String(templateId), "--wait"]);
    expect(r.code, r.stderr).toBe(1);
    expect(oneLine(r)).toMatch(/^kiln: the build failed: .*no-such-package-anywhere/);
    await ok(["bundle", "delete", "--id", String(bundleId)]);
  });

  it("unknown ids exit 1 with the server's message", async () => {
    for (const [args, message] of [
      [["bundle", "info", "--id", "999"], "kiln: no software bundle 999"],
      [["image", "info", "--id", "999"], "kiln: no image 999"],
      [["template", "delete", "--id", "999"], "kiln: no container template 999"],
      [["publish", "status", "--id", "999"], "kiln: no published image 999"],
      [["account", "delete", "--id", "999"], "kiln: no cloud account 999"],
    ] as const) {
      const r = await kiln([...args]);
      expect(r.code, args.join(" ")).toBe(1);
      expect(oneLine(r)).toBe(message);
    }
  });

  it("bad usage exits 2", async () => {
    for (const args of [
      ["image", "info"],
      ["image", "info", "--id", "abc"],
      ["image", "generate", "--template", "1", "--format", "VMware"],
      ["image", "generate", "--template", "1", "--entrypoint", "/bin/sh -c true"],
      ["bundle", "frobnicate"],
      ["completion", "fish"],
      ["image"],
    ]) {
      const r = await kiln(args);
      expect(r.code, `${args.join(" ")}: ${r.stderr}`).toBe(2);
      expect(r.stderr).not.toMatch(/^\s+at /m);
    }
    const format = await kiln(["image", "generate", "--template", "1", "--format", "VMware"]);
    expect(format.stderr).toMatch(/^kiln: --format must be Docker or OpenShift, not "VMware"$/m);
  });

  it("shows the stack trace only with --debug, and logs requests there", async () => {
    const r = await kiln(["bundle", "info", "--id", "999", "--debug"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^debug: GET http:\/\/127\.0\.0\.1:\d+\/api\/users\/alice\/mysoftware\/999 -> 404/m);
    expect(r.stderr).toMatch(/^KilnApiError: no software bundle 999\n\s+at /m);
  });
});

describe("help and completion", () => {
  it("has help with examples for every command", async () => {
    const top = await ok(["--help"]);
    for (const c of ["login", "bundle", "template", "image", "publish", "account", "completion", "build", "serve"]) expect(top.stdout).toMatch(new RegExp(`^  ${c}\\b`, "m"));
    for (const args of [["bundle", "create"], ["image", "download"], ["image", "generate"], ["account", "create"], ["login"]]) {
      const h = await ok([...args, "--help"]);
      expect(h.stdout, args.join(" ")).toMatch(/Examples?:\n  /);
      expect(h.stdout).toMatch(/--profile <name>|--url <url>/);
    }
  });

  it("is importable as the package's typed client", async () => {
    const out = await new Promise<string>((resolve, reject) =>
      execFile(process.execPath, ["--input-type=module", "-e", 'const m = await import("kiln"); console.log(typeof m.KilnClient, typeof m.KilnApiError, Object.keys(m.OPERATIONS).length)'], { cwd: ROOT }, (err, stdout) => (err ? reject(err) : resolve(stdout))),
    );
    expect(out.trim()).toBe("function function 75");
  });

  it("prints a bash completion that completes commands, subcommands and options", async () => {
    const script = (await ok(["completion", "bash"])).stdout;
    const complete = (words: string[]): string[] =>
      execFileSync("bash", ["-c", `${script}\nCOMP_WORDS=(${words.map((w) => `'${w}'`).join(" ")}); COMP_CWORD=${words.length - 1}; _kiln; printf '%s\\n' "\${COMPREPLY[@]}"`], { encoding: "utf8" }).trim().split("\n");
    expect(complete(["kiln", "bun"])).toEqual(["bundle"]);
    expect(complete(["kiln", "image", "d"]).sort()).toEqual(["delete", "download"]);
    expect(complete(["kiln", "image", "generate", "--fo"])).toEqual(["--format"]);
    expect(complete(["kiln", "image", "generate", "--format", ""]).sort()).toEqual(["Docker", "OpenShift"]);
    expect(complete(["kiln", "build", "--compression", ""]).sort()).toEqual(["gzip", "zstd"]);
    expect(complete(["kiln", "completion", "z"])).toEqual(["zsh"]);
  });

  it("prints a zsh completion that a real zsh completes commands, subcommands, options and values with", async () => {
    const zsh = (await ok(["completion", "zsh"])).stdout;
    expect(zsh).toMatch(/^#compdef kiln\n/);
    const script = path.join(work, "_kiln.zsh");
    writeFileSync(script, zsh);
    const typed = ["kiln ima", "kiln image gen", "kiln image generate --tem", "kiln image generate --format Op", "kiln completion z", "kiln publish can", `kiln bundle create --file ${script.slice(0, -3)}`, "kiln nosuch"];
    const lines = await new Promise<string[]>((resolve, reject) =>
      execFile("zsh", ["-f", path.join(ROOT, "test/helpers/zsh-complete.zsh"), script, ...typed], { timeout: 60_000 }, (err, stdout) => (err ? reject(err) : resolve(stdout.split("\n").slice(0, typed.length)))),
    );
    expect(lines).toEqual([
      "kiln image ",
      "kiln image generate ",
      "kiln image generate --template ",
      "kiln image generate --format OpenShift ",
      "kiln completion zsh ",
      "kiln publish cancel ",
      `kiln bundle create --file ${script} `,
      "kiln nosuch",
    ]);
  });
});

describe("boot scripts", () => {
  it("keeps a bootscript's bootOrder and bootType, and shows them", async () => {
    const dir = path.join(work, "boot");
    mkdirSync(dir, { recursive: true });
    writeFileSync(path.join(dir, "init.sh"), "#!/bin/sh\necho first\n");
    writeFileSync(path.join(dir, "bundle.yml"), "name: booting\nversion: \"1\"\nfiles:\n  - name: init.sh\n    source: init.sh\n    tag: bootscript\n    bootOrder: 1\n    bootType: firstboot\n");
    const created = JSON.parse((await ok(["bundle", "create", "--file", path.join(dir, "bundle.yml"), "--json"])).stdout) as { dbId: number };
    const info = JSON.parse((await ok(["bundle", "info", "--id", String(created.dbId), "--json"])).stdout) as { softwareArtifacts: unknown[] };
    expect(info.softwareArtifacts).toEqual([expect.objectContaining({ name: "init.sh", tag: "bootscript", xsiType: "BootScript", bootOrder: 1, bootType: "firstboot", uploaded: true })]);
    expect((await ok(["bundle", "info", "--id", String(created.dbId)])).stdout).toMatch(/^ {2}init\.sh \(\d+ B\) \[bootscript, firstboot order 1\]$/m);
    await ok(["bundle", "delete", "--id", String(created.dbId)]);
  });
});
