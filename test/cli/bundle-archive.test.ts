/**
 * `kiln bundle` and hammr's bundle files and archives, with the compiled command against a live
 * server: sources read as hammr reads them (the current directory first, the bundle file's
 * directory only when nothing is there), `validate` with warnings for files that are not there,
 * `create` that needs them, and a bundle made by `kiln bundle create` equal on the server to the
 * one hammr's archive of the same file makes; `export` and `import` round trip.
 */
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import type { AddressInfo } from "node:net";
import path from "node:path";
import { Readable } from "node:stream";
import { buffer } from "node:stream/consumers";
import { gzipSync } from "node:zlib";
import tar from "tar-stream";
import YAML from "yaml";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { KilnClient, type SoftwareArtifact } from "../../src/sdk/index.js";
import { tempDir } from "../fixtures/debs.js";
import { startTestServer, type TestServer } from "../helpers/api.js";
import { ROOT } from "../helpers/global-setup.js";

const KILN = path.join(ROOT, "bin/kiln.js");
let server: TestServer;
let url: string;
let work: string;
let sdk: KilnClient;

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function kiln(args: string[], cwd: string): Promise<Run> {
  return new Promise((resolve) => {
    const env: NodeJS.ProcessEnv = { ...process.env, XDG_CONFIG_HOME: path.join(work, "config"), KILN_URL: url, KILN_USER: "bob", KILN_PASSWORD: "bob-password" };
    delete env.KILN_PROFILE;
    execFile(process.execPath, [KILN, ...args], { cwd, env, encoding: "utf8", timeout: 120_000 }, (err, stdout, stderr) =>
      resolve({ code: err ? (typeof (err as { code?: unknown }).code === "number" ? (err as { code: number }).code : 1) : 0, stdout, stderr }),
    );
  });
}

const sha = (s: string): string => createHash("sha256").update(s).digest("hex");

beforeAll(async () => {
  work = tempDir("kiln-bundle-archive-");
  server = await startTestServer();
  await server.rt.app.listen({ port: 0, host: "127.0.0.1" });
  url = `http://127.0.0.1:${(server.rt.app.server.address() as AddressInfo).port}`;
  await server.createUser("bob", "bob-password");
  sdk = new KilnClient({ url, user: "bob", password: "bob-password" });
  // hammr.md's example: a file and a directory of two files, the bundle file in its own folder.
  const project = path.join(work, "project");
  mkdirSync(path.join(project, "conf"), { recursive: true });
  writeFileSync(path.join(project, "notes.txt"), "notes beside the bundle file\n");
  writeFileSync(path.join(project, "conf", "a.txt"), "A\n");
  writeFileSync(path.join(project, "conf", "b.txt"), "B\n");
  writeFileSync(path.join(project, "LICENSE"), "MIT License\n");
  writeFileSync(
    path.join(project, "bundle.yml"),
    YAML.stringify({
      name: "hello",
      version: "1.0",
      destination: "/opt/hello",
      restrictionRule: "Distribution#name=Debian",
      license: { name: "MIT", source: "LICENSE" },
      files: [
        { name: "notes.txt", source: "notes.txt", rights: "0640", files: [] },
        { name: "conf", source: "conf", files: [] },
      ],
    }),
  );
  // The same relative path from the current directory: hammr takes this one.
  writeFileSync(path.join(work, "notes.txt"), "notes from the current directory\n");
});
afterAll(async () => {
  sdk?.close();
  await server?.close();
  if (work) rmSync(work, { recursive: true, force: true });
});

/** A bundle as the server holds it: what must be the same however it was made. */
async function snapshot(id: number) {
  const b = await sdk.bundles.get(id);
  const strip = (a: SoftwareArtifact): unknown => ({ name: a.name, type: a.type, size: a.size, sha256sum: a.sha256sum, params: a.params, tag: a.tag, children: (a.subSoftwareArtifacts ?? []).map(strip) });
  return {
    name: b.name,
    version: b.version,
    defaultInstallLocation: b.defaultInstallLocation,
    rule: b.bundleRestriction?.restrictionRule,
    license: b.license && { name: b.license.name, size: b.license.size, sha256sum: b.license.sha256sum },
    artifacts: ((await sdk.artifacts.list(id)).softwareArtifacts ?? []).map(strip),
  };
}

/** The archive hammr 3.8.13 builds for project/bundle.yml run from `work` (hammr.md: "The archive"). */
async function hammrArchive(): Promise<Buffer> {
  const pack = tar.pack();
  const add = (name: string, body?: string): void => {
    if (body === undefined) pack.entry({ name, type: "directory", mode: 0o755 });
    else pack.entry({ name, mode: 0o644 }, body);
  };
  add("bundles/hello/1.0/notes.txt", "notes from the current directory\n");
  add("bundles/hello/1.0/conf");
  add("bundles/hello/1.0/conf/a.txt", "A\n");
  add("bundles/hello/1.0/conf/b.txt", "B\n");
  add("bundles/hello/1.0/conf/a.txt", "A\n");
  add("bundles/hello/1.0/conf/b.txt", "B\n");
  add("bundles/hello/LICENSE", "MIT License\n");
  const d = {
    destination: "/opt/hello",
    files: [
      { files: [], name: "notes.txt", rights: "0640", source: "bundles/hello/1.0/notes.txt" },
      {
        files: [
          { files: [], name: "a.txt", source: "bundles/hello/1.0/conf/a.txt" },
          { files: [], name: "b.txt", source: "bundles/hello/1.0/conf/b.txt" },
        ],
        name: "conf",
        source: "bundles/hello/1.0/conf",
      },
    ],
    license: { name: "MIT", source: "bundles/hello/LICENSE" },
    name: "hello",
    restrictionRule: "Distribution#name=Debian",
    version: "1.0",
  };
  add("bundle.yml", `---\n${YAML.stringify(d)}`);
  pack.finalize();
  return gzipSync(await buffer(pack as unknown as Readable));
}

describe("kiln bundle and hammr", () => {
  let created: number;

  it("create takes a source from the current directory first, as hammr does, and makes what hammr's archive makes", async () => {
    const r = await kiln(["bundle", "create", "--file", "project/bundle.yml", "--json"], work);
    expect(r.code, r.stderr).toBe(0);
    created = (JSON.parse(r.stdout) as { dbId: number }).dbId;
    const mine = await snapshot(created);
    expect(mine.artifacts[0]).toMatchObject({ name: "notes.txt", sha256sum: sha("notes from the current directory\n"), params: "rights=0640" });

    const viaHammr = await sdk.bundles.importArchive(Readable.from([await hammrArchive()]));
    expect(await snapshot(viaHammr.dbId!)).toEqual(mine);
  });

  it("falls back to the bundle file's directory when the current directory has nothing there", async () => {
    const r = await kiln(["bundle", "create", "--file", "bundle.yml", "--json"], path.join(work, "project"));
    expect(r.code, r.stderr).toBe(0);
    const s = await snapshot((JSON.parse(r.stdout) as { dbId: number }).dbId);
    expect(s.artifacts[0]).toMatchObject({ name: "notes.txt", sha256sum: sha("notes beside the bundle file\n") });
    const elsewhere = path.join(work, "elsewhere");
    mkdirSync(elsewhere, { recursive: true });
    const r2 = await kiln(["bundle", "create", "--file", "../project/bundle.yml", "--json"], elsewhere);
    expect(r2.code, r2.stderr).toBe(0);
    expect((await snapshot((JSON.parse(r2.stdout) as { dbId: number }).dbId)).artifacts[0]).toMatchObject({ sha256sum: sha("notes beside the bundle file\n") });
  });

  it("validate warns about files that are not there (exit 0); create refuses them (exit 1) and makes nothing", async () => {
    const dir = path.join(work, "missing");
    mkdirSync(dir, { recursive: true });
    writeFileSync(path.join(dir, "bundle.yml"), 'name: gone\nversion: "1"\nfiles:\n  - name: gone.txt\n    source: gone.txt\n');
    const v = await kiln(["bundle", "validate", "--file", "bundle.yml"], dir);
    expect(v.code, v.stderr).toBe(0);
    expect(v.stderr).toMatch(/^warning: bundle\.yml: files\[0\] \(gone\.txt\): \[source\] gone\.txt does not exist/m);
    expect(v.stdout).toMatch(/is valid \(gone 1, 0 files, .*\), with 1 warning$/m);
    const before = (await sdk.bundles.list()).total;
    const c = await kiln(["bundle", "create", "--file", "bundle.yml"], dir);
    expect(c.code).toBe(1);
    expect(c.stderr.trim()).toMatch(/^kiln: bundle gone was not created: bundle\.yml: files\[0\] \(gone\.txt\): \[source\] gone\.txt does not exist/);
    expect((await sdk.bundles.list()).total).toBe(before);
  });

  it("validate warns about a folder entry without [files], which hammr needs (even empty)", async () => {
    const dir = path.join(work, "nofiles");
    mkdirSync(path.join(dir, "conf"), { recursive: true });
    writeFileSync(path.join(dir, "conf", "a.txt"), "a\n");
    writeFileSync(path.join(dir, "bundle.yml"), 'name: nofiles\nversion: "1"\nfiles:\n  - name: conf\n    source: conf\n');
    const v = await kiln(["bundle", "validate", "--file", "bundle.yml"], dir);
    expect(v.code, v.stderr).toBe(0);
    expect(v.stderr).toMatch(/^warning: bundle\.yml: files\[0\] \(conf\): \[source\] conf is a folder but the entry has no \[files\] \(hammr needs it, even empty: files: \[\]\)$/m);
  });

  it.each([
    ["files under a file", 'name: x\nversion: "1"\nfiles:\n  - name: a\n    source: a.txt\n    files:\n      - name: b\n        source: a.txt\n', /files\[0\] \(a\): the list of files is not empty but \[source\] a\.txt is not a folder$/],
    ["symlink on a bootscript", 'name: x\nversion: "1"\nfiles:\n  - name: a\n    source: a.txt\n    tag: bootscript\n    symlink: /usr/bin/a\n', /\[ownerGroup\], \[rights\] or \[symlink\] is set but the file is not tagged softwarefile$/],
    ["a bootscript below the first level", 'name: x\nversion: "1"\nfiles:\n  - name: d\n    source: d\n    files:\n      - name: s\n        source: a.txt\n        tag: bootscript\n', /a file tagged bootscript must be in the first level files section$/],
    ["an attribute hammr does not know", 'name: x\nversion: "1"\nfiles:\n  - name: a\n    source: a.txt\n    mode: "0755"\n', /unknown attribute \[mode\]/],
  ])("validate refuses %s (exit 1)", async (_what, text, why) => {
    const dir = path.join(work, "bad", sha(text).slice(0, 8));
    mkdirSync(path.join(dir, "d"), { recursive: true });
    writeFileSync(path.join(dir, "a.txt"), "a\n");
    writeFileSync(path.join(dir, "bundle.yml"), text);
    const r = await kiln(["bundle", "validate", "--file", "bundle.yml"], dir);
    expect(r.code).toBe(1);
    expect(r.stderr.trim()).toMatch(why);
  });

  it("export writes hammr's archive, and import makes an equal bundle from it", async () => {
    const out = path.join(work, "out");
    mkdirSync(out, { recursive: true });
    const e = await kiln(["bundle", "export", "--id", String(created)], out);
    expect(e.code, e.stderr).toBe(0);
    expect(e.stdout).toMatch(/^Exported bundle \d+ "hello" to hello\.tar\.gz \(/);
    const i = await kiln(["bundle", "import", "--file", "hello.tar.gz", "--json"], out);
    expect(i.code, i.stderr).toBe(0);
    const again = JSON.parse(i.stdout) as { dbId: number; imported: boolean };
    expect(again.imported).toBe(true);
    expect(await snapshot(again.dbId)).toEqual(await snapshot(created));
    const info = await kiln(["bundle", "info", "--id", String(again.dbId)], out);
    expect(info.stdout).toMatch(/^License: +MIT \(file, 12 B\)$/m);
    expect(info.stdout).toMatch(/^Imported: +yes/m);
  });
});
