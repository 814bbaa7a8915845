/**
 * hammr's calls (spec: ../shared/uforge/hammr.md), made with plain HTTP in XML exactly as hammr
 * 3.8.13 makes them: every answer validates against uforge.xsd (the test server checks each XML
 * body with xmllint, as pyxb would refuse it), and every field hammr reads is present with the
 * type it expects (decoded with the schema's declarations).
 *
 * Checks that depend on the contract work of issue 11 (items 2 and 3: FIQL search, and fields
 * such as mySoftware.size, images' fileSize, targetFormat.category, packages' pkgBuildDate) are
 * marked "(contract)" in their names; those that cannot pass before that work lands are
 * `it.fails` (an expected failure): when it lands they fail, and become plain `it`.
 */
import { readFileSync } from "node:fs";
import path from "node:path";
import { Readable } from "node:stream";
import { buffer } from "node:stream/consumers";
import { gzipSync } from "node:zlib";
import tar from "tar-stream";
import YAML from "yaml";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { decode, type RootValue } from "../../src/wire/index.js";
import { jsonClient, startTestServer, type TestServer } from "../helpers/api.js";
import { MIRROR_DIR } from "../helpers/global-setup.js";
import { startRegistry, type TestRegistry } from "../helpers/registry.js";

let server: TestServer;
let registry: TestRegistry;
const USER = "hammr";

beforeAll(async () => {
  // The test registry listens on loopback, which publication refuses unless allowed.
  server = await startTestServer({ env: { KILN_PUBLISH_ALLOW: "127.0.0.1" } });
  await server.createUser(USER);
  registry = await startRegistry();
});
afterAll(async () => {
  await server?.close();
  await registry?.stop();
});

/** One hammr call: XML in and out, the answer's root checked and decoded. */
async function call<R extends string>(method: "GET" | "POST" | "PUT" | "DELETE", url: string, root: R | undefined, options: { status?: number; payload?: string | Buffer; contentType?: string } = {}): Promise<RootValue<R>> {
  const res = await server.request({
    method,
    url: `/api/${url}`,
    user: USER,
    headers: { accept: "application/xml", ...(options.payload !== undefined ? { "content-type": options.contentType ?? "application/xml" } : {}) },
    ...(options.payload !== undefined ? { payload: options.payload } : {}),
  });
  expect(res.statusCode, `${method} ${url}: ${res.body}`).toBe(options.status ?? (method === "POST" ? 201 : 200));
  if (root === undefined) return {} as RootValue<R>;
  expect(String(res.headers["content-type"])).toMatch(/xml/);
  // Decoded for the one root asked for; spelling out the union of every root's type is too much for tsc.
  const decoded: { value: unknown } = decode<string>(root, res.body, "xml");
  return decoded.value as RootValue<R>;
}

/** A field hammr reads without a guard: present, of the type it uses. */
function must(value: unknown, type: "string" | "number" | "boolean" | "date", what: string): void {
  expect(value, `${what} is missing`).not.toBeUndefined();
  if (type === "date") expect(value, what).toBeInstanceOf(Date);
  else expect(typeof value, what).toBe(type);
}

describe("os list", () => {
  it("lists the user's distributions and, for each, its OS profiles by name", async () => {
    const list = await call("GET", `users/${USER}/distros`, "distributions");
    expect(list.distributions?.length).toBeGreaterThan(0);
    for (const d of list.distributions!) {
      must(d.dbId, "number", "distribution.dbId");
      must(d.name, "string", "distribution.name");
      must(d.version, "string", "distribution.version");
      must(d.arch, "string", "distribution.arch");
      const profiles = await call("GET", `distributions/${d.dbId}/profiles`, "distribProfiles");
      expect(profiles.distribProfiles?.map((p) => p.name)).toEqual(["minbase", "none"]);
    }
  });
});

describe("bundle categories", () => {
  it("finds the user's first org, then its PROJECT categories (Kiln has none)", async () => {
    const orgs = await call("GET", `users/${USER}/orgs`, "orgs");
    const first = orgs.orgs?.[0];
    must(first?.dbId, "number", "orgs/org[0]/dbId");
    const categories = await call("GET", `orgs/${first!.dbId}/categories?query=${encodeURIComponent("type=='PROJECT'")}`, "categories");
    for (const c of categories.categories ?? []) must(c.name, "string", "category.name");
  });

  it("answers 404 for an org that is not there, 400 for a query that is not FIQL", async () => {
    await call("GET", "orgs/999/categories", undefined, { status: 404 });
    await call("GET", `orgs/1/categories?query=${encodeURIComponent("type=='PROJECT")}`, undefined, { status: 400 });
  });
});

describe("quota list", () => {
  it("answers a quotas list whose entries, if any, carry type, nb and limit (Kiln counts nothing: empty)", async () => {
    const quotas = await call("GET", `users/${USER}/quotas`, "quotas");
    expect(quotas.quotas ?? []).toEqual([]);
  });
});

const NS1 = 'xmlns:ns1="http://www.usharesoft.com/uforge" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"';

/** The start-up check before every hammr command: the server's status and its version. */
async function startUp(): Promise<void> {
  const status = await call("GET", "status", "serviceStatus");
  must(status.version, "string", "serviceStatus.version");
}

/** An archive as `hammr bundle create` builds it for hammr.md's example bundle. */
async function hammrArchive(name: string): Promise<Buffer> {
  const pack = tar.pack();
  const base = `bundles/${name}/1.0`;
  const description = {
    destination: "/opt/hello",
    files: [
      { files: [], name: "notes.txt", source: `${base}/notes.txt` },
      { files: [{ files: [], name: "a.txt", source: `${base}/conf/a.txt` }], name: "conf", source: `${base}/conf` },
    ],
    name,
    version: "1.0",
  };
  pack.entry({ name: `${base}/notes.txt` }, "notes\n");
  pack.entry({ name: `${base}/conf`, type: "directory", mode: 0o755 });
  pack.entry({ name: `${base}/conf/a.txt` }, "A\n");
  pack.entry({ name: `${base}/conf/a.txt` }, "A\n");
  pack.entry({ name: "bundle.yml" }, `---\n${YAML.stringify(description)}`);
  pack.finalize();
  return gzipSync(await buffer(pack as unknown as Readable));
}

/** An OpStatus as hammr reads it while it polls (and on error, what it prints). */
function checkStatus(s: RootValue<"status">, what: string): void {
  must(s.complete, "boolean", `${what}.complete`);
  must(s.error, "boolean", `${what}.error`);
  must(s.percentage, "number", `${what}.percentage`);
  if (s.error) {
    must(s.message, "string", `${what}.message`);
    must(s.errorMessage, "string", `${what}.errorMessage`);
    must(s.detailedError, "boolean", `${what}.detailedError`);
    if (s.detailedError) must(s.detailedErrorMsg, "string", `${what}.detailedErrorMsg`);
  }
}

/** hammr's import_bundle: ticket, raw upload, poll the status until done, the ticket's referenceUri. */
async function importBundle(archive: Buffer, imported: boolean): Promise<number> {
  await startUp();
  const ticket = await call("POST", `users/${USER}/bundleimports?imported=${imported}`, "softwareBundleImport");
  must(ticket.dbId, "number", "softwareBundleImport.dbId");
  let status = await call("POST", `users/${USER}/bundleimports/${ticket.dbId}/uploads`, "status", { payload: archive, contentType: "application/octet-stream" });
  checkStatus(status, "upload status");
  while (!status.complete && !status.error) {
    status = await call("GET", `users/${USER}/bundleimports/${ticket.dbId}/status`, "status");
    checkStatus(status, "import status");
  }
  expect(status.error).toBe(false);
  const done = await call("GET", `users/${USER}/bundleimports/${ticket.dbId}`, "softwareBundleImport");
  must(done.referenceUri, "string", "softwareBundleImport.referenceUri");
  expect(done.referenceUri).toMatch(new RegExp(`^users/${USER}/mysoftware/\\d+$`));
  return Number(done.referenceUri!.split("/").pop());
}

/** What hammr reads of a bundle in bundle list and bundle delete. */
function checkBundle(b: RootValue<"mySoftware">, what: string, contract: boolean): void {
  must(b.dbId, "number", `${what}.dbId`);
  must(b.name, "string", `${what}.name`);
  must(b.version, "string", `${what}.version`);
  must(b.imported, "boolean", `${what}.imported`);
  if (b.category !== undefined) must(b.category.name, "string", `${what}.category.name`);
  if (contract) must(b.size, "number", `${what}.size`);
}

describe("bundle create, import, list, clone, export, delete", () => {
  let created: number;
  let imported: number;

  it("bundle create: imports the archive hammr built, with imported=false", async () => {
    created = await importBundle(await hammrArchive("hello"), false);
    const b = await call("GET", `users/${USER}/mysoftware/${created}`, "mySoftware");
    expect(b).toMatchObject({ name: "hello", version: "1.0", imported: false });
  });

  it("bundle import: the same sequence with imported=true", async () => {
    imported = await importBundle(await hammrArchive("hello-imported"), true);
    const b = await call("GET", `users/${USER}/mysoftware/${imported}`, "mySoftware");
    expect(b.imported).toBe(true);
  });

  it("bundle list: every bundle with the fields hammr prints", async () => {
    await startUp();
    const list = await call("GET", `users/${USER}/mysoftware`, "mySoftwareList");
    expect(list.mySoftwareList?.map((b) => b.name).sort()).toEqual(["hello", "hello-imported"]);
    for (const b of list.mySoftwareList!) checkBundle(b, "mySoftware", false);
  });

  it("bundle list and delete (contract): every bundle has its size, the total of its files", async () => {
    const list = await call("GET", `users/${USER}/mysoftware`, "mySoftwareList");
    for (const b of list.mySoftwareList!) checkBundle(b, "mySoftware", true);
    expect(list.mySoftwareList!.find((b) => b.dbId === created)!.size).toBe(8);
  });

  it("bundle clone: a mySoftware body with name and version, answered by a mySoftware", async () => {
    await startUp();
    const copy = await call("POST", `users/${USER}/mysoftware/${created}/clone`, "mySoftware", { payload: `<ns1:mySoftware ${NS1}><name>hello-copy</name><version>2.0</version></ns1:mySoftware>` });
    expect(copy).toMatchObject({ name: "hello-copy", version: "2.0" });
  });

  it("bundle export: ticket with its status, status polled, archive downloaded, ticket deleted; the archive imports again", async () => {
    await startUp();
    const b = await call("GET", `users/${USER}/mysoftware/${created}`, "mySoftware");
    must(b.dbId, "number", "mySoftware.dbId");
    must(b.name, "string", "mySoftware.name");
    const ticket = await call("POST", `users/${USER}/mysoftware/${b.dbId}/exports?outputFormat=yaml`, "softwareBundleExport");
    must(ticket.dbId, "number", "softwareBundleExport.dbId");
    let status = ticket.status!;
    checkStatus(status, "softwareBundleExport.status");
    while (!status.complete && !status.error) {
      status = await call("GET", `users/${USER}/mysoftware/${b.dbId}/exports/${ticket.dbId}/status`, "status");
      checkStatus(status, "export status");
    }
    expect(status.complete).toBe(true);
    const dl = await server.request({ method: "GET", url: `/api/users/${USER}/mysoftware/${b.dbId}/exports/${ticket.dbId}/downloads`, user: USER });
    expect(dl.statusCode).toBe(200);
    await call("DELETE", `users/${USER}/mysoftware/${b.dbId}/exports/${ticket.dbId}`, undefined, { status: 204 });
    const again = await importBundle(dl.rawPayload, true);
    const arts = (await jsonClient(server, USER).api<{ softwareArtifacts: Array<{ name: string; size?: number; subSoftwareArtifacts?: Array<{ name: string; size?: number }> }> }>("GET", `users/${USER}/mysoftware/${again}/artifacts`)).json.softwareArtifacts;
    expect(arts.map((a) => [a.name, a.size, (a.subSoftwareArtifacts ?? []).map((c) => [c.name, c.size])])).toEqual([
      ["notes.txt", 6, []],
      ["conf", undefined, [["a.txt", 2]]],
    ]);
  });

  it("bundle delete: the bundle (a mySoftware), then its deletion", async () => {
    await startUp();
    const b = await call("GET", `users/${USER}/mysoftware/${imported}`, "mySoftware");
    checkBundle(b, "mySoftware", false);
    await call("DELETE", `users/${USER}/mysoftware/${b.dbId}`, undefined, { status: 204 });
    await call("GET", `users/${USER}/mysoftware/${b.dbId}`, undefined, { status: 404 });
  });
});

describe("bundle validate", () => {
  it("makes no call besides the start-up status check", async () => {
    await startUp();
  });
});

describe("os search", () => {
  it("reads the distribution, then its packages by name", async () => {
    await startUp();
    const list = await call("GET", `users/${USER}/distros`, "distributions");
    const d = await call("GET", `distributions/${list.distributions![0]!.dbId}`, "distribution");
    must(d.name, "string", "distribution.name");
    must(d.version, "string", "distribution.version");
    must(d.dbId, "number", "distribution.dbId");
    if (d.releaseDate !== undefined) must(d.releaseDate, "date", "distribution.releaseDate");
  });

  it("finds packages with hammr's unquoted FIQL query (name==jq, and its * forms), each with the fields hammr prints", async () => {
    const list = await call("GET", `users/${USER}/distros`, "distributions");
    const id = list.distributions![0]!.dbId!;
    const pkgs = await call("GET", `distributions/${id}/pkgs?query=${encodeURIComponent("name==jq")}`, "packages");
    expect(pkgs.pkgs?.length).toBeGreaterThan(0);
    for (const p of pkgs.pkgs!) {
      expect(p.name).toBe("jq");
      must(p.version, "string", "pkg.version");
      must(p.arch, "string", "pkg.arch");
      must(p.release, "string", "pkg.release");
      must(p.size, "number", "pkg.size");
      must(p.fullName, "string", "pkg.fullName");
    }
    const starting = await call("GET", `distributions/${id}/pkgs?query=${encodeURIComponent("name==libc*")}`, "packages");
    expect(starting.pkgs?.length).toBeGreaterThan(0);
    for (const p of starting.pkgs!) expect(p.name!.startsWith("libc")).toBe(true);
  });

  it("(contract) every package found has its pkgBuildDate: its .deb's build time", async () => {
    const list = await call("GET", `users/${USER}/distros`, "distributions");
    for (const query of ["name==jq", "name==libc*"]) {
      const pkgs = await call("GET", `distributions/${list.distributions![0]!.dbId}/pkgs?query=${encodeURIComponent(query)}`, "packages");
      expect(pkgs.pkgs?.length).toBeGreaterThan(0);
      for (const p of pkgs.pkgs!) {
        must(p.pkgBuildDate, "date", `pkg.pkgBuildDate of ${p.name}`);
        // The mtime dpkg-deb wrote in the first ar member header (bytes 16-27 of the header at 8).
        const head = readFileSync(path.join(MIRROR_DIR, "pool", p.fullName!)).subarray(0, 68);
        expect(head.toString("latin1", 8, 24).trim()).toBe("debian-binary");
        expect(p.pkgBuildDate!.getTime(), p.name).toBe(Number(head.toString("latin1", 24, 36).trim()) * 1000);
      }
    }
  });
});

describe("format list", () => {
  it("lists the target formats with name, format name, credAccountType and access", async () => {
    await startUp();
    const list = await call("GET", `users/${USER}/targetformats`, "targetFormats");
    expect(list.targetFormats?.length).toBeGreaterThan(0);
    for (const f of list.targetFormats!) {
      must(f.name, "string", "targetFormat.name");
      must(f.format?.name, "string", "targetFormat.format.name");
      must(f.credAccountType, "string", "targetFormat.credAccountType");
      must(f.access, "boolean", "targetFormat.access");
    }
  });

  it("(contract) every target format has its category's name", async () => {
    const list = await call("GET", `users/${USER}/targetformats`, "targetFormats");
    for (const f of list.targetFormats!) must(f.category?.name, "string", "targetFormat.category.name");
  });
});

describe("account create, list, delete", () => {
  it("creates a Docker account as hammr sends it, lists it, reads and deletes it", async () => {
    await startUp();
    const platforms = await call("GET", `users/${USER}/targetplatforms`, "targetPlatforms");
    const docker = platforms.targetPlatforms!.find((p) => p.name === "Docker");
    must(docker?.type, "string", "targetPlatform.type");
    expect(docker!.type!.toLowerCase().replace(/-/g, "_")).toBe("docker");
    await call("POST", `users/${USER}/accounts`, undefined, {
      payload: `<ns1:credAccount ${NS1} xsi:type="ns1:CredAccountDocker"><name>hub</name><targetPlatform><name>Docker</name></targetPlatform><endpointUrl>https://registry.example.com</endpointUrl><login>me</login><password>secret-pw</password></ns1:credAccount>`,
    });
    const list = await call("GET", `users/${USER}/accounts`, "credAccounts");
    for (const a of list.credAccounts!) {
      must(a.dbId, "number", "credAccount.dbId");
      must(a.name, "string", "credAccount.name");
      must(a.targetPlatform?.name, "string", "credAccount.targetPlatform.name");
      must(a.created, "date", "credAccount.created");
    }
    const id = list.credAccounts!.find((a) => a.name === "hub")!.dbId!;
    const one = await call("GET", `users/${USER}/accounts/${id}`, "credAccount");
    must(one.targetPlatform?.name, "string", "credAccount.targetPlatform.name");
    must(one.created, "date", "credAccount.created");
    await call("DELETE", `users/${USER}/accounts/${id}`, undefined, { status: 204 });
  });
});

describe("image list, info, download", () => {
  let imageId: number;

  beforeAll(async () => {
    const { api, waitFor } = jsonClient(server, USER);
    const b = await api<{ uri: string; dbId: number }>("POST", `users/${USER}/mysoftware`, { name: "img", version: "1.0", description: "an image" });
    const t = await api<{ uri: string }>("POST", `${b.json.uri}/templates`, { distribution: { name: "Debian", version: "12", arch: "x86_64" } });
    const img = await api<{ dbId: number; statusUri: string }>("POST", `${t.json.uri}/images`, { targetFormat: { name: "Docker" }, compress: true, entrypoint: '["/bin/sh"]' });
    expect(img.status, JSON.stringify(img.json)).toBe(201);
    imageId = img.json.dbId;
    const s = await waitFor(img.json.statusUri);
    expect(s.complete, JSON.stringify(s)).toBe(true);
    // Published once, so that the publications hammr lists are not an empty list.
    const acct = await api<{ uri: string }>("POST", `users/${USER}/accounts`, { xsiType: "CredAccountDocker", name: "local", endpointUrl: registry.url, login: "x", password: "y" });
    expect(acct.status, JSON.stringify(acct.json)).toBe(201);
    const pub = await api<{ uri: string }>("POST", `${img.json.statusUri.replace(/\/status$/, "")}/pimages`, { xsiType: "PublishImageDocker", credAccount: { xsiType: "CredAccountDocker", uri: acct.json.uri }, namespace: "team", repositoryName: "img", tagName: "1.0" });
    expect(pub.status, JSON.stringify(pub.json)).toBe(201);
    expect((await waitFor(`${pub.json.uri}/status`)).complete).toBe(true);
  }, 300_000);

  function checkPublication(p: RootValue<"publishImage">): void {
    must(p.name, "string", "publishImage.name");
    must(p.imageUri, "string", "publishImage.imageUri");
    must(p.dbId, "number", "publishImage.dbId");
    must(p.credAccount?.targetPlatform?.name, "string", "publishImage.credAccount.targetPlatform.name");
    must(p.cloudId, "string", "publishImage.cloudId");
    for (const f of ["complete", "error", "cancelled"] as const) must(p.status?.[f], "boolean", `publishImage.status.${f}`);
    must(p.status?.percentage, "number", "publishImage.status.percentage");
    const docker = p as { namespace?: string; repositoryName?: string; tagName?: string };
    must(docker.namespace, "string", "publishImage.namespace");
    must(docker.repositoryName, "string", "publishImage.repositoryName");
    must(docker.tagName, "string", "publishImage.tagName");
  }

  function checkImage(i: RootValue<"image">, contract: boolean): void {
    must(i.dbId, "number", "image.dbId");
    must(i.name, "string", "image.name");
    must(i.version, "string", "image.version");
    must(i.revision, "number", "image.revision");
    must(i.targetFormat?.name, "string", "image.targetFormat.name");
    must(i.targetFormat?.format?.name, "string", "image.targetFormat.format.name");
    must(i.created, "date", "image.created");
    must(i.compress, "boolean", "image.compress");
    must(i.uri, "string", "image.uri");
    must(i.parentUri, "string", "image.parentUri");
    for (const f of ["complete", "error", "cancelled"] as const) must(i.status?.[f], "boolean", `image.status.${f}`);
    must(i.status?.percentage, "number", "image.status.percentage");
    must(i.entrypoint, "string", "image.entrypoint");
    if (i.status?.complete) must(i.registeringName, "string", "image.registeringName");
    if (contract) must(i.fileSize, "number", "image.fileSize");
  }

  it("image list: every image with the fields hammr prints, and the publications", async () => {
    await startUp();
    const list = await call("GET", `users/${USER}/images`, "images");
    for (const i of list.images!) checkImage(i, false);
    const pimages = await call("GET", `users/${USER}/pimages`, "publishImages");
    expect(pimages.publishImages).toHaveLength(1);
    for (const p of pimages.publishImages!) checkPublication(p);
  });

  it("image list (contract): every image has its fileSize", async () => {
    const list = await call("GET", `users/${USER}/images`, "images");
    for (const i of list.images!) checkImage(i, true);
  });

  it("image info: the image, its bundle and template by parentUri, its publications by imageUri", async () => {
    await startUp();
    const list = await call("GET", `users/${USER}/images`, "images");
    const i = list.images!.find((x) => x.dbId === imageId)!;
    checkImage(i, false);
    expect(i.targetFormat!.format!.name!.toLowerCase()).toBe("docker");
    const parts = i.parentUri!.split("/");
    const msid = parts[parts.indexOf("mysoftware") + 1];
    const tid = parts[parts.indexOf("templates") + 1];
    const b = await call("GET", `users/${USER}/mysoftware/${msid}`, "mySoftware");
    must(b.dbId, "number", "mySoftware.dbId");
    must(b.description, "string", "mySoftware.description");
    const t = await call("GET", `users/${USER}/mysoftware/${msid}/templates/${tid}`, "containerTemplate");
    must(t.distribution?.name, "string", "containerTemplate.distribution.name");
    must(t.distribution?.version, "string", "containerTemplate.distribution.version");
    must(t.distribution?.arch, "string", "containerTemplate.distribution.arch");
    const pimages = await call("GET", `users/${USER}/pimages`, "publishImages");
    const mine = (pimages.publishImages ?? []).filter((p) => p.imageUri === i.uri);
    expect(mine).toHaveLength(1);
    checkPublication(mine[0]!);
    expect(mine[0]!.status!.complete).toBe(true);
  });

  it("image download: a complete, compressed docker image gives hammr its registeringName to pull", async () => {
    await startUp();
    const list = await call("GET", `users/${USER}/images`, "images");
    const i = list.images!.find((x) => x.dbId === imageId)!;
    expect(i.status).toMatchObject({ complete: true, error: false });
    expect(i.compress).toBe(true);
    expect(i.registeringName).toBe("img:1.0");
  });
});
