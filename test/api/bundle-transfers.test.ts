/**
 * Bundle imports and exports with hammr's archives: an archive laid out as `hammr bundle create`
 * writes it becomes the bundle it describes; an export is such an archive and re-imports to an
 * equal bundle; hostile archives are refused with the reason on the ticket.
 */
import { createHash } from "node:crypto";
import { once } from "node:events";
import { mkdtempSync, rmSync } from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { Readable } from "node:stream";
import { buffer } from "node:stream/consumers";
import { createGzip, gunzipSync, gzipSync } from "node:zlib";
import tar from "tar-stream";
import YAML from "yaml";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BlobStore } from "../../src/blobs/blob-store.js";
import { readBundleArchive } from "../../src/library/bundle-archive.js";
import { errorMessage, jsonClient, startTestServer, type JsonStatus, type TestServer } from "../helpers/api.js";
import { postgresTarget, sqliteTarget, type TargetDatabase } from "../helpers/databases.js";

let server: TestServer;
let api: ReturnType<typeof jsonClient>["api"];

type Member = { name: string; body?: string | Buffer; type?: "file" | "directory" | "symlink"; linkname?: string };

/** A tar.gz as Python's tarfile writes hammr's (members in the order given). */
async function archive(members: Member[]): Promise<Buffer> {
  const pack = tar.pack();
  for (const m of members) {
    if (m.type === "directory") pack.entry({ name: m.name, type: "directory", mode: 0o755 });
    else if (m.type === "symlink") pack.entry({ name: m.name, type: "symlink", linkname: m.linkname! });
    else pack.entry({ name: m.name, mode: 0o644 }, m.body ?? "");
  }
  pack.finalize();
  return gzipSync(await buffer(pack as unknown as Readable));
}

/** The members of a downloaded archive, by name (directories with an empty body). */
async function members(gz: Buffer): Promise<Map<string, { type: string; body: Buffer }>> {
  const extract = tar.extract();
  const out = new Map<string, { type: string; body: Buffer }>();
  const done = (async () => {
    for await (const e of extract) out.set(e.header.name, { type: e.header.type ?? "file", body: await buffer(e as unknown as Readable) });
  })();
  Readable.from([gunzipSync(gz)]).pipe(extract as unknown as NodeJS.WritableStream);
  await done;
  return out;
}

const sha = (s: string | Buffer): string => createHash("sha256").update(s).digest("hex");

/** hammr's `bundle create` sequence: ticket, raw upload, status until done, ticket → the bundle's id. */
async function importArchive(gz: Buffer, imported = false): Promise<{ status: number; body: string; msid?: number; ticket: number }> {
  const t = await server.request({ method: "POST", url: `/api/users/imp/bundleimports?imported=${imported}`, user: "imp" });
  expect(t.statusCode, t.body).toBe(201);
  const ticket = Number(/<dbId>(\d+)<\/dbId>/.exec(t.body)![1]);
  const up = await server.request({ method: "POST", url: `/api/users/imp/bundleimports/${ticket}/uploads`, user: "imp", headers: { "content-type": "application/octet-stream" }, payload: gz });
  if (up.statusCode !== 201) return { status: up.statusCode, body: errorMessage(up), ticket };
  const s = (await api<JsonStatus>("GET", `users/imp/bundleimports/${ticket}/status`)).json;
  expect(s.complete).toBe(true);
  const got = (await api<{ referenceUri: string }>("GET", `users/imp/bundleimports/${ticket}`)).json;
  expect(got.referenceUri).toMatch(/^users\/imp\/mysoftware\/\d+$/);
  return { status: 201, body: up.body, msid: Number(got.referenceUri.split("/").pop()), ticket };
}

interface Artifact {
  name: string;
  type: string;
  size?: number;
  sha256sum?: string;
  params?: string;
  tag?: string;
  installLocation?: string;
  extract?: boolean;
  subSoftwareArtifacts?: Artifact[];
}

/** What makes two bundles equal: fields, rule, and every artifact's name, size, sha256, params. */
async function snapshot(msid: number) {
  const b = (await api<Record<string, any>>("GET", `users/imp/mysoftware/${msid}`)).json;
  const arts = (await api<{ softwareArtifacts: Artifact[] }>("GET", `users/imp/mysoftware/${msid}/artifacts`)).json.softwareArtifacts ?? [];
  const strip = (a: Artifact): unknown => ({
    name: a.name,
    type: a.type,
    size: a.size,
    sha256sum: a.sha256sum,
    params: a.params,
    tag: a.tag,
    installLocation: a.installLocation,
    extract: a.extract,
    children: (a.subSoftwareArtifacts ?? []).map(strip),
  });
  return {
    name: b.name,
    version: b.version,
    description: b.description,
    defaultInstallLocation: b.defaultInstallLocation,
    rule: b.bundleRestriction?.restrictionRule,
    license: b.license && { name: b.license.name, size: b.license.size, sha256sum: b.license.sha256sum },
    logo: b.logo && { name: b.logo.name, size: b.logo.size, sha256sum: b.logo.sha256sum },
    artifacts: arts.map(strip),
  };
}

// The example of hammr.md: a file, and a directory added recursively and then walked (its files twice).
const DESCRIPTION = {
  name: "hello world",
  version: "1.0",
  description: "says hello",
  destination: "/opt/hello",
  restrictionRule: "Distribution#name=Debian",
  license: { name: "MIT", source: "bundles/hello_world/LICENSE" },
  sourceLogo: "bundles/hello_world/logo.png",
  files: [
    { name: "notes.txt", source: "bundles/hello_world/1.0/notes.txt", rights: "0640", ownerGroup: "app:app", files: [] },
    {
      name: "conf",
      source: "bundles/hello_world/1.0/conf",
      destination: "/etc/hello",
      files: [
        { name: "a.txt", source: "bundles/hello_world/1.0/conf/a.txt", files: [] },
        { name: "b.txt", source: "bundles/hello_world/1.0/conf/b.txt", files: [] },
      ],
    },
    { name: "start.sh", source: "bundles/hello_world/1.0/start.sh", tag: "bootscript", bootOrder: 2, bootType: "firstboot" },
    { name: "jq", source: "jq", tag: "ospkg", install: true },
  ],
};

function hammrArchive(description: object = DESCRIPTION): Promise<Buffer> {
  return archive([
    { name: "bundles/hello_world/1.0/notes.txt", body: "notes\n" },
    { name: "bundles/hello_world/1.0/conf", type: "directory" },
    { name: "bundles/hello_world/1.0/conf/a.txt", body: "A\n" },
    { name: "bundles/hello_world/1.0/conf/b.txt", body: "B B\n" },
    { name: "bundles/hello_world/1.0/conf/a.txt", body: "A\n" },
    { name: "bundles/hello_world/1.0/conf/b.txt", body: "B B\n" },
    { name: "bundles/hello_world/1.0/start.sh", body: "#!/bin/sh\necho hi\n" },
    { name: "bundles/hello_world/LICENSE", body: "MIT License\n" },
    { name: "bundles/hello_world/logo.png", body: Buffer.from([0x89, 0x50, 0x4e, 0x47]) },
    { name: "bundle.yml", body: `---\n${YAML.stringify(description)}` },
  ]);
}

// On both metadata stores: the default SQLite and PostgreSQL (KILN_DATABASE_URL).
describe.each([sqliteTarget, postgresTarget])("on $dialect", (target) => {
  let db: TargetDatabase;
  beforeAll(async () => {
    db = await target.create();
    server = await startTestServer(db.options.databaseUrl ? { databaseUrl: db.options.databaseUrl } : {});
    await server.createUser("imp");
    api = jsonClient(server, "imp").api;
  });
  afterAll(async () => {
    await server?.close();
    await db?.drop();
  });

  describe("import", () => {
    it("makes the bundle a hammr archive describes: fields, rule, files with bytes, a folder with its files, license, logo", async () => {
      const r = await importArchive(await hammrArchive());
      expect(r.status, r.body).toBe(201);
      const s = await snapshot(r.msid!);
      expect(s).toMatchObject({ name: "hello world", version: "1.0", description: "says hello", defaultInstallLocation: "/opt/hello", rule: "Distribution#name=Debian" });
      expect(s.license).toEqual({ name: "MIT", size: 12, sha256sum: sha("MIT License\n") });
      expect(s.logo).toEqual({ name: "logo.png", size: 4, sha256sum: sha(Buffer.from([0x89, 0x50, 0x4e, 0x47])) });
      expect(s.artifacts).toEqual([
        { name: "notes.txt", type: "file", size: 6, sha256sum: sha("notes\n"), params: "ownerGroup=app:app;rights=0640", tag: undefined, installLocation: undefined, extract: false, children: [] },
        {
          name: "conf",
          type: "folder",
          size: undefined,
          sha256sum: undefined,
          params: undefined,
          tag: "softwarefile",
          installLocation: "/etc/hello",
          extract: false,
          children: [
            { name: "a.txt", type: "file", size: 2, sha256sum: sha("A\n"), params: undefined, tag: undefined, installLocation: undefined, extract: false, children: [] },
            { name: "b.txt", type: "file", size: 4, sha256sum: sha("B B\n"), params: undefined, tag: undefined, installLocation: undefined, extract: false, children: [] },
          ],
        },
        { name: "start.sh", type: "file", size: 18, sha256sum: sha("#!/bin/sh\necho hi\n"), params: undefined, tag: "bootscript", installLocation: undefined, extract: false, children: [] },
        { name: "jq", type: "file", size: undefined, sha256sum: undefined, params: undefined, tag: "ospkg", installLocation: undefined, extract: false, children: [] },
      ]);
      const bundle = (await api<{ imported: boolean }>("GET", `users/imp/mysoftware/${r.msid}`)).json;
      expect(bundle.imported).toBe(false);
    });

    it("reads hammr's deeper levels: a subfolder's files named at <dir><subdir>/ beside the recursive add's copies, each once", async () => {
      const d = {
        name: "deep",
        version: "1",
        files: [
          {
            name: "conf",
            source: "bundles/deep/1/conf",
            files: [
              { name: "a.txt", source: "bundles/deep/1/conf/a.txt", files: [] },
              { name: "sub", source: "bundles/deep/1/conf/sub", files: [{ name: "deep.txt", source: "bundles/deep/1/confsub/deep.txt", files: [] }] },
            ],
          },
        ],
      };
      const r = await importArchive(
        await archive([
          { name: "bundles/deep/1/conf", type: "directory" },
          { name: "bundles/deep/1/conf/a.txt", body: "A\n" },
          { name: "bundles/deep/1/conf/sub", type: "directory" },
          { name: "bundles/deep/1/conf/sub/deep.txt", body: "deep\n" },
          { name: "bundles/deep/1/conf/a.txt", body: "A\n" },
          { name: "bundles/deep/1/conf/sub", type: "directory" },
          { name: "bundles/deep/1/conf/sub/deep.txt", body: "deep\n" },
          { name: "bundles/deep/1/confsub/deep.txt", body: "deep\n" },
          { name: "bundle.yml", body: YAML.stringify(d) },
        ]),
      );
      expect(r.status, r.body).toBe(201);
      const s = await snapshot(r.msid!);
      const shape = (a: any): unknown => [a.name, a.size ?? null, a.children.map(shape)];
      expect(s.artifacts.map(shape)).toEqual([["conf", null, [["a.txt", 2, []], ["sub", null, [["deep.txt", 5, []]]]]]]);
    });

    it("marks the bundle imported for hammr bundle import (imported=true)", async () => {
      const r = await importArchive(await hammrArchive({ ...DESCRIPTION, name: "again" }), true);
      expect((await api<{ imported: boolean }>("GET", `users/imp/mysoftware/${r.msid}`)).json.imported).toBe(true);
    });

    it.each([
      ["an entry that climbs out", [{ name: "../evil", body: "x" }], /entry "\.\.\/evil" has a '\.\.' component/],
      ["an absolute entry", [{ name: "/etc/evil", body: "x" }], /is an absolute path/],
      ["a symbolic link", [{ name: "bundles/x/1/l", type: "symlink" as const, linkname: "/etc/passwd" }], /is a symlink: a bundle archive holds files and directories only/],
      ["no description", [{ name: "bundles/x/1/a", body: "a" }], /no bundle\.yml or bundle\.json at its root/],
      ["a source outside the archive", [{ name: "bundle.yml", body: YAML.stringify({ name: "x", version: "1", files: [{ name: "a", source: "bundles/x/1/a" }] }) }], /files\[0\] \(a\): its source bundles\/x\/1\/a is not in the archive/],
      ["a source that climbs out", [{ name: "bundle.yml", body: YAML.stringify({ name: "x", version: "1", files: [{ name: "a", source: "../../a" }] }) }], /has a '\.\.' component/],
      ["an ospkg below the first level", [{ name: "d/f", body: "f" }, { name: "bundle.yml", body: YAML.stringify({ name: "x", version: "1", files: [{ name: "d", source: "d", files: [{ name: "f", source: "d/f", tag: "ospkg" }] }] }) }], /must be in the first level files section/],
      ["an attribute hammr does not know", [{ name: "bundle.yml", body: YAML.stringify({ name: "x", version: "1", files: [{ name: "a", source: "a", colour: "red" }] }) }], /unknown attribute \[colour\]/],
    ])("refuses %s with 400, and the ticket says why", async (_what, list, why) => {
      const r = await importArchive(await archive(list as Member[]));
      expect(r.status).toBe(400);
      expect(r.body).toMatch(why);
      const s = (await api<JsonStatus>("GET", `users/imp/bundleimports/${r.ticket}/status`)).json;
      expect(s).toMatchObject({ error: true, complete: false });
      expect(s.errorMessage).toMatch(why);
    });

    it("refuses a body that is not a tar.gz, and a second upload to one ticket", async () => {
      const r = await importArchive(Buffer.from("not an archive"));
      expect(r.status).toBe(400);
      expect(r.body).toMatch(/not gzip-compressed/);
      const ok = await importArchive(await hammrArchive({ ...DESCRIPTION, name: "once" }));
      const again = await server.request({ method: "POST", url: `/api/users/imp/bundleimports/${ok.ticket}/uploads`, user: "imp", payload: await hammrArchive() });
      expect(again.statusCode).toBe(409);
    });

    it("keeps another user out of a ticket", async () => {
      await server.createUser("other");
      const r = await server.request({ method: "GET", url: "/api/users/imp/bundleimports/1", user: "other" });
      expect(r.statusCode).toBe(404);
    });
  });

  describe("export", () => {
    it("writes hammr's layout, re-imports to an equal bundle, and a deleted export is gone", async () => {
      const first = await importArchive(await hammrArchive({ ...DESCRIPTION, name: "round trip" }));
      const before = await snapshot(first.msid!);

      const ticket = await server.request({ method: "POST", url: `/api/users/imp/mysoftware/${first.msid}/exports?outputFormat=yaml`, user: "imp" });
      expect(ticket.statusCode, ticket.body).toBe(201);
      const eid = Number(/<dbId>(\d+)<\/dbId>/.exec(ticket.body)![1]);
      expect(ticket.body).toMatch(/<status>[\s\S]*<complete>true<\/complete>[\s\S]*<\/status>/);
      const status = (await api<JsonStatus>("GET", `users/imp/mysoftware/${first.msid}/exports/${eid}/status`)).json;
      expect(status.complete).toBe(true);

      const dl = await server.request({ method: "GET", url: `/api/users/imp/mysoftware/${first.msid}/exports/${eid}/downloads`, user: "imp" });
      expect(dl.statusCode).toBe(200);
      const got = await members(dl.rawPayload);
      expect([...got.keys()]).toEqual([
        "bundles/round_trip/1.0/notes.txt",
        "bundles/round_trip/1.0/conf",
        "bundles/round_trip/1.0/conf/a.txt",
        "bundles/round_trip/1.0/conf/b.txt",
        "bundles/round_trip/1.0/start.sh",
        "bundles/round_trip/LICENSE",
        "bundles/round_trip/logo.png",
        "bundle.yml",
      ]);
      const yml = got.get("bundle.yml")!.body.toString();
      expect(yml.startsWith("---\n")).toBe(true);
      const d = YAML.parse(yml) as typeof DESCRIPTION;
      expect(d.files.map((f) => f.source)).toEqual(["bundles/round_trip/1.0/notes.txt", "bundles/round_trip/1.0/conf", "bundles/round_trip/1.0/start.sh", "jq"]);
      expect(got.get("bundles/round_trip/1.0/conf/b.txt")!.body.toString()).toBe("B B\n");

      const second = await importArchive(dl.rawPayload);
      expect(second.status, second.body).toBe(201);
      expect(second.msid).not.toBe(first.msid);
      expect(await snapshot(second.msid!)).toEqual(before);

      const del = await server.request({ method: "DELETE", url: `/api/users/imp/mysoftware/${first.msid}/exports/${eid}`, user: "imp" });
      expect(del.statusCode).toBe(204);
      const gone = await server.request({ method: "GET", url: `/api/users/imp/mysoftware/${first.msid}/exports/${eid}/downloads`, user: "imp" });
      expect(gone.statusCode).toBe(404);
    });

    it("keeps an export's paths inside the archive whatever the bundle's name, and re-imports it", async () => {
      const b = (await api<{ dbId: number; uri: string }>("POST", "users/imp/mysoftware", { name: "../evil name", version: ".." })).json;
      const a = (await api<{ uri: string }>("POST", `${b.uri}/artifacts`, { name: "x.txt" })).json;
      await server.request({ method: "POST", url: `/api/${a.uri}/bin/x.txt`, user: "imp", payload: "x" });
      const t = (await api<{ dbId: number }>("POST", `users/imp/mysoftware/${b.dbId}/exports?outputFormat=yaml`)).json;
      const dl = await server.request({ method: "GET", url: `/api/users/imp/mysoftware/${b.dbId}/exports/${t.dbId}/downloads`, user: "imp" });
      expect(dl.headers["content-disposition"]).toMatch(/filename="\.\._evil_name\.tar\.gz"/);
      expect([...(await members(dl.rawPayload)).keys()]).toEqual(["bundles/.._evil_name/__/x.txt", "bundle.yml"]);
      const again = await importArchive(dl.rawPayload);
      expect(again.status, again.body).toBe(201);
      expect(await snapshot(again.msid!)).toEqual(await snapshot(b.dbId));
    });

    it("writes bundle.json for outputFormat=json, and refuses another format", async () => {
      const r = await importArchive(await hammrArchive({ ...DESCRIPTION, name: "json one" }));
      const t = (await api<{ dbId: number }>("POST", `users/imp/mysoftware/${r.msid}/exports?outputFormat=json`)).json;
      const dl = await server.request({ method: "GET", url: `/api/users/imp/mysoftware/${r.msid}/exports/${t.dbId}/downloads`, user: "imp" });
      const d = JSON.parse((await members(dl.rawPayload)).get("bundle.json")!.body.toString()) as { name: string };
      expect(d.name).toBe("json one");
      const bad = await server.request({ method: "POST", url: `/api/users/imp/mysoftware/${r.msid}/exports?outputFormat=xml`, user: "imp" });
      expect(bad.statusCode).toBe(400);
    });
  });

  describe("license and logo", () => {
    it("uploads, downloads and deletes a bundle's license and logo; they travel with exports", async () => {
      const b = (await api<{ dbId: number }>("POST", "users/imp/mysoftware", { name: "with files", version: "2", license: { name: "GPL-2.0" } })).json;
      const up = await server.request({ method: "POST", url: `/api/users/imp/mysoftware/${b.dbId}/licenses/1/COPYING`, user: "imp", headers: { "content-type": "text/plain" }, payload: "GPL text\n" });
      expect(up.statusCode, up.body).toBe(201);
      const license = (await api<{ license: { dbId: number; name: string; size: number; sha256sum: string; uri: string } }>("GET", `users/imp/mysoftware/${b.dbId}`)).json.license;
      expect(license).toMatchObject({ name: "GPL-2.0", size: 9, sha256sum: sha("GPL text\n") });
      const dl = await server.request({ method: "GET", url: `/api/${license.uri}`, user: "imp" });
      expect(dl.statusCode).toBe(200);
      expect(dl.body).toBe("GPL text\n");

      const logo = await server.request({ method: "POST", url: `/api/users/imp/mysoftware/${b.dbId}/logo/1/icon.png`, user: "imp", headers: { "content-type": "image/png" }, payload: Buffer.from("PNG") });
      expect(logo.statusCode, logo.body).toBe(201);
      const logoId = Number(/<dbId>(\d+)<\/dbId>/.exec(logo.body)![1]);
      const logoDl = await server.request({ method: "GET", url: `/api/users/imp/mysoftware/${b.dbId}/logo/${logoId}/icon.png`, user: "imp" });
      expect(logoDl.body).toBe("PNG");
      expect((await server.request({ method: "GET", url: `/api/users/imp/mysoftware/${b.dbId}/logo/${logoId}/other.png`, user: "imp" })).statusCode).toBe(404);

      const t = (await api<{ dbId: number }>("POST", `users/imp/mysoftware/${b.dbId}/exports?outputFormat=yaml`)).json;
      const arch = await members((await server.request({ method: "GET", url: `/api/users/imp/mysoftware/${b.dbId}/exports/${t.dbId}/downloads`, user: "imp" })).rawPayload);
      expect(arch.get("bundles/with_files/COPYING")!.body.toString()).toBe("GPL text\n");
      expect(YAML.parse(arch.get("bundle.yml")!.body.toString())).toMatchObject({ license: { name: "GPL-2.0", source: "bundles/with_files/COPYING" }, sourceLogo: "bundles/with_files/icon.png" });

      expect((await server.request({ method: "DELETE", url: `/api/${license.uri}`, user: "imp" })).statusCode).toBe(204);
      expect((await server.request({ method: "GET", url: `/api/${license.uri}`, user: "imp" })).statusCode).toBe(404);
      expect((await server.request({ method: "DELETE", url: `/api/users/imp/mysoftware/${b.dbId}/logo/${logoId}`, user: "imp" })).statusCode).toBe(204);
      const after = (await api<{ license?: { name: string; size?: number }; logo?: unknown }>("GET", `users/imp/mysoftware/${b.dbId}`)).json;
      expect(after.license).toEqual({ name: "GPL-2.0" });
      expect(after.logo).toBeUndefined();
      // Nothing references the bytes any more: they are gone from the blob store.
      expect(await server.rt.deps.blobs.has(`sha256:${sha("GPL text\n")}`)).toBe(false);
    });
  });
});

describe("limits", () => {
  let small: TestServer;
  beforeAll(async () => {
    small = await startTestServer({ env: { KILN_MAX_UPLOAD: "64KB" } });
    await small.createUser("imp");
  });
  afterAll(async () => small?.close());

  async function upload(gz: Buffer): Promise<{ status: number; message: string; ticket: number }> {
    const t = await small.request({ method: "POST", url: "/api/users/imp/bundleimports", user: "imp" });
    const ticket = Number(/<dbId>(\d+)<\/dbId>/.exec(t.body)![1]);
    const r = await small.request({ method: "POST", url: `/api/users/imp/bundleimports/${ticket}/uploads`, user: "imp", headers: { "content-type": "application/octet-stream" }, payload: gz });
    return { status: r.statusCode, message: errorMessage(r), ticket };
  }

  it("refuses an archive of more entries than it may hold, and keeps none of them", async () => {
    const dir = mkdtempSync(path.join(tmpdir(), "kiln-entries-"));
    const blobs = BlobStore.open(dir);
    const gz = await archive([{ name: "a", body: "a" }, { name: "b", body: "b" }, { name: "c", body: "c" }]);
    await expect(readBundleArchive(blobs, Readable.from([gz]), 1 << 20, 2)).rejects.toThrow(/more than 2 entries/);
    expect(await blobs.list()).toEqual([]);
    rmSync(dir, { recursive: true, force: true });
  });

  it("refuses an archive larger than KILN_MAX_UPLOAD, and one whose files unpack larger (a gzip bomb), with 413", async () => {
    const big = await upload(Buffer.alloc(70 * 1024, 7));
    expect(big.status).toBe(413);
    const bomb = await upload(await archive([{ name: "bundles/x/1/zeros", body: Buffer.alloc(1 << 20) }, { name: "bundle.yml", body: "name: x\nversion: '1'\nfiles: []\n" }]));
    expect(bomb.status).toBe(413);
    expect(bomb.message).toMatch(/files exceed the limit of \d+ bytes \(KILN_MAX_UPLOAD\)/);
    // Nothing of it stays: no bundle, and the ticket says why.
    const list = await small.request({ method: "GET", url: "/api/users/imp/mysoftware", user: "imp", headers: { accept: "application/json" } });
    expect((list.json() as { mySoftwareList?: unknown[] }).mySoftwareList ?? []).toEqual([]);
    const status = await small.request({ method: "GET", url: `/api/users/imp/bundleimports/${bomb.ticket}/status`, user: "imp", headers: { accept: "application/json" } });
    expect(status.json()).toMatchObject({ error: true });
  });
});

describe("streaming", () => {
  let big: TestServer;
  beforeAll(async () => {
    big = await startTestServer();
    await big.createUser("imp");
    await big.rt.app.listen({ port: 0, host: "127.0.0.1" });
  });
  afterAll(async () => big?.close());

  it("imports a 192 MiB file without holding it in memory", async () => {
    const SIZE = 192 << 20;
    const t = await big.request({ method: "POST", url: "/api/users/imp/bundleimports", user: "imp" });
    const ticket = Number(/<dbId>(\d+)<\/dbId>/.exec(t.body)![1]);
    // The archive is made as it is sent: a file of zeros (tiny once compressed), then its description.
    const pack = tar.pack();
    const zeros = Buffer.alloc(1 << 20);
    const body = (pack as unknown as Readable).pipe(createGzip());
    void (async () => {
      const entry = pack.entry({ name: "bundles/big/1/big.bin", size: SIZE });
      for (let i = 0; i < SIZE / zeros.length; i++) if (!(entry as unknown as NodeJS.WritableStream).write(zeros)) await once(entry as unknown as NodeJS.EventEmitter, "drain");
      (entry as unknown as NodeJS.WritableStream).end();
      pack.entry({ name: "bundle.yml" }, YAML.stringify({ name: "big", version: "1", files: [{ name: "big.bin", source: "bundles/big/1/big.bin" }] }));
      pack.finalize();
    })();
    global.gc?.();
    const before = process.memoryUsage().rss;
    let peak = before;
    const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 20);
    const { port } = big.rt.app.server.address() as AddressInfo;
    const status = await new Promise<number>((resolve, reject) => {
      const req = http.request({ host: "127.0.0.1", port, method: "POST", path: `/api/users/imp/bundleimports/${ticket}/uploads`, auth: "imp:imp-password", headers: { "content-type": "application/octet-stream" } }, (res) => {
        res.resume();
        res.on("end", () => resolve(res.statusCode ?? 0));
      });
      req.on("error", reject);
      body.pipe(req);
    });
    clearInterval(sampler);
    expect(status).toBe(201);
    const arts = (await big.request({ method: "GET", url: "/api/users/imp/mysoftware", user: "imp", headers: { accept: "application/json" } })).json() as { mySoftwareList: Array<{ dbId: number }> };
    const files = (await big.request({ method: "GET", url: `/api/users/imp/mysoftware/${arts.mySoftwareList[0]!.dbId}/artifacts`, user: "imp", headers: { accept: "application/json" } })).json() as { softwareArtifacts: Array<{ size: number }> };
    expect(files.softwareArtifacts[0]!.size).toBe(SIZE);
    // Held in memory, the file alone would add 192 MiB.
    expect(peak - before).toBeLessThan(64 << 20);
  });
});
