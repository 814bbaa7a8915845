/**
 * The resources of the foundation beyond the main flow: HTTP caching, search criteria, clone and
 * cascades, artifact downloads, cloud accounts with their secrets, distributions and packages.
 */
import { readFileSync, statSync } from "node:fs";
import path from "node:path";
import Database from "better-sqlite3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { errorMessage, startTestServer, xmlField, type TestServer } from "../helpers/api.js";
import { MIRROR_DIR } from "../helpers/global-setup.js";

const NS = 'xmlns:ns0="http://www.usharesoft.com/uforge"';
const XSI = 'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"';
const XML = { "content-type": "application/xml" };
let server: TestServer;

async function createBundle(name: string, version = "1.0"): Promise<number> {
  const res = await server.request({ method: "POST", url: "/api/users/alice/mysoftware", user: "alice", headers: XML, payload: `<ns0:mySoftware ${NS}><name>${name}</name><version>${version}</version></ns0:mySoftware>` });
  expect(res.statusCode, res.body).toBe(201);
  return Number(xmlField(res.body, "dbId"));
}

beforeAll(async () => {
  server = await startTestServer();
  await server.createUser("alice");
});
afterAll(async () => server?.close());

describe("HTTP caching", () => {
  it("answers ETag and Last-Modified, and 304 while the object is unchanged", async () => {
    const id = await createBundle("cached");
    const url = `/api/users/alice/mysoftware/${id}`;
    const first = await server.request({ method: "GET", url, user: "alice" });
    const etag = first.headers.etag as string;
    expect(etag).toBe(`"${xmlField(first.body, "digest")}"`);
    expect(first.headers["last-modified"]).toBeTruthy();
    const again = await server.request({ method: "GET", url, user: "alice", headers: { "if-none-match": etag } });
    expect(again.statusCode).toBe(304);
    expect(again.body).toBe("");
    const since = await server.request({ method: "GET", url, user: "alice", headers: { "if-modified-since": first.headers["last-modified"] as string } });
    expect(since.statusCode).toBe(304);
    // JSON carries the same digest.
    const json = await server.request({ method: "GET", url, user: "alice", headers: { accept: "application/json" } });
    expect(json.headers.etag).toBe(etag);

    await new Promise((r) => setTimeout(r, 1100));
    const put = await server.request({ method: "PUT", url, user: "alice", headers: XML, payload: `<ns0:mySoftware ${NS}><description>changed</description></ns0:mySoftware>` });
    expect(put.statusCode, put.body).toBe(200);
    const after = await server.request({ method: "GET", url, user: "alice", headers: { "if-none-match": etag } });
    expect(after.statusCode).toBe(200);
    expect(after.headers.etag).not.toBe(etag);
    expect(xmlField(after.body, "description")).toBe("changed");
    const stale = await server.request({ method: "GET", url, user: "alice", headers: { "if-modified-since": first.headers["last-modified"] as string } });
    expect(stale.statusCode).toBe(200);
  });
});

describe("search criteria", () => {
  const list = async (q: string) => server.request({ method: "GET", url: `/api/users/alice/mysoftware?${q}`, user: "alice", headers: { accept: "application/json" } });
  const get = async (q: string) => (await list(q)).json() as { total: number; mySoftwareList: Array<{ name: string; version: string }> };

  it("filters with FIQL, orders, pages and counts", async () => {
    for (const n of ["zeta", "alpha-tool", "beta-tool", "gamma-tool"]) await createBundle(n);
    let page = await get(`query=${encodeURIComponent("name=='*tool'")}&orderBy=name`);
    expect(page.total).toBe(3);
    expect(page.mySoftwareList.map((b) => b.name)).toEqual(["alpha-tool", "beta-tool", "gamma-tool"]);
    page = await get(`query=${encodeURIComponent("name==*TOOL*")}&orderBy=name&descending=true&count=2`);
    expect(page.total).toBe(3);
    expect(page.mySoftwareList.map((b) => b.name)).toEqual(["gamma-tool", "beta-tool"]);
    page = await get(`query=${encodeURIComponent("name=='*tool*'")}&orderBy=name&count=2&offset=2`);
    expect(page.mySoftwareList.map((b) => b.name)).toEqual(["gamma-tool"]);
    expect(page.total).toBe(3);
  });

  it("reads the documented forms: ; and, , or, != and quoted or bare values", async () => {
    await createBundle("nginx");
    await createBundle("nginx-extras");
    const q = async (fiql: string) => (await get(`query=${encodeURIComponent(fiql)}&orderBy=name`)).mySoftwareList.map((b) => `${b.name} ${b.version}`);
    expect(await q("name=='nginx';version=='1.0'")).toEqual(["nginx 1.0"]);
    expect(await q("name==nginx;version==1.0")).toEqual(["nginx 1.0"]);
    expect(await q("name=='nginx';version=='2.0'")).toEqual([]);
    expect(await q("name==nginx,name==zeta")).toEqual(["nginx 1.0", "zeta 1.0"]);
    expect(await q("name==nginx*;name!=nginx")).toEqual(["nginx-extras 1.0"]);
    // The raw form hammr's SDK sends: quotes and = not percent-encoded.
    const raw = await list("query=name=='nginx';version=='1.0'");
    expect(raw.statusCode, raw.body).toBe(200);
    expect((raw.json() as { total: number }).total).toBe(1);
  });

  it("answers 400 pointing at the fault of a malformed query, or naming the fields of the list", async () => {
    const bad = await list(`query=${encodeURIComponent("name=='nginx'version==1")}`);
    expect(bad.statusCode).toBe(400);
    expect(errorMessage(bad)).toMatch(/malformed query at character 14: expected "," or ";"/);
    const unknown = await list(`query=${encodeURIComponent("colour==red")}`);
    expect(unknown.statusCode).toBe(400);
    expect(errorMessage(unknown)).toMatch(/cannot search mySoftwareList by "colour" .*: searchable fields are dbId, name, version/);
    const images = await server.request({ method: "GET", url: `/api/users/alice/images?query=${encodeURIComponent("colour==red")}`, user: "alice" });
    expect(images.statusCode).toBe(400);
    expect(errorMessage(images)).toMatch(/cannot search a list of Image by "colour"/);
  });
});

describe("boot scripts", () => {
  it("keep bootOrder and bootType as a BootScript, through reads, updates and clones", async () => {
    const id = await createBundle("with-boot");
    const url = `/api/users/alice/mysoftware/${id}/artifacts`;
    const created = await server.request({
      method: "POST",
      url,
      user: "alice",
      headers: XML,
      payload: `<ns0:softwareArtifact ${NS} ${XSI} xsi:type="ns0:BootScript"><name>init.sh</name><bootOrder>2</bootOrder><bootType>firstboot</bootType></ns0:softwareArtifact>`,
    });
    expect(created.statusCode, created.body).toBe(201);
    expect(created.body).toContain('xsi:type="ns0:BootScript"');
    expect(xmlField(created.body, "tag")).toBe("bootscript");
    expect(xmlField(created.body, "bootOrder")).toBe("2");
    expect(xmlField(created.body, "bootType")).toBe("firstboot");
    const artifactId = Number(xmlField(created.body, "dbId"));

    const json = async (u: string) => (await server.request({ method: "GET", url: u, user: "alice", headers: { accept: "application/json" } })).json() as Record<string, unknown>;
    expect(await json(`${url}/${artifactId}`)).toMatchObject({ xsiType: "BootScript", tag: "bootscript", bootOrder: 2, bootType: "firstboot" });

    const put = await server.request({ method: "PUT", url: `${url}/${artifactId}`, user: "alice", headers: { "content-type": "application/json", accept: "application/json" }, payload: JSON.stringify({ xsiType: "BootScript", bootType: "everyboot" }) });
    expect(put.statusCode, put.body).toBe(200);
    expect(put.json()).toMatchObject({ bootOrder: 2, bootType: "everyboot" });

    const clone = await server.request({ method: "POST", url: `/api/users/alice/mysoftware/${id}/clone`, user: "alice", headers: XML, payload: `<ns0:mySoftware ${NS}><name>with-boot-copy</name></ns0:mySoftware>` });
    expect(clone.statusCode, clone.body).toBe(201);
    const copied = (await json(`/api/users/alice/mysoftware/${xmlField(clone.body, "dbId")}/artifacts`)) as { softwareArtifacts: Array<Record<string, unknown>> };
    expect(copied.softwareArtifacts[0]).toMatchObject({ name: "init.sh", xsiType: "BootScript", bootOrder: 2, bootType: "everyboot" });

    // Re-tagged as a plain file, it is no longer a boot script: when and in which order go.
    const retag = await server.request({ method: "PUT", url: `${url}/${artifactId}`, user: "alice", headers: XML, payload: `<ns0:softwareArtifact ${NS}><tag>softwarefile</tag></ns0:softwareArtifact>` });
    expect(retag.statusCode, retag.body).toBe(200);
    expect(retag.body).not.toContain("BootScript");
    expect(retag.body).not.toContain("bootOrder");
  });

  it("refuses a BootScript that is not a bootscript, a negative order and an unknown boot type", async () => {
    const id = await createBundle("bad-boot");
    const post = (body: string) => server.request({ method: "POST", url: `/api/users/alice/mysoftware/${id}/artifacts`, user: "alice", headers: XML, payload: body });
    const bad = [
      [`<ns0:softwareArtifact ${NS} ${XSI} xsi:type="ns0:BootScript"><name>a.sh</name><tag>ospkg</tag></ns0:softwareArtifact>`, /a BootScript must be tagged bootscript, not ospkg/],
      [`<ns0:softwareArtifact ${NS} ${XSI} xsi:type="ns0:BootScript"><name>a.sh</name><bootOrder>-1</bootOrder></ns0:softwareArtifact>`, /bootOrder must be 0 or more, got -1/],
      [`<ns0:softwareArtifact ${NS} ${XSI} xsi:type="ns0:BootScript"><name>a.sh</name><bootType>sometimes</bootType></ns0:softwareArtifact>`, /bootType/],
    ] as const;
    for (const [body, message] of bad) {
      const res = await post(body);
      expect(res.statusCode, res.body).toBe(400);
      expect(errorMessage(res)).toMatch(message);
    }
    const list = await server.request({ method: "GET", url: `/api/users/alice/mysoftware/${id}/artifacts`, user: "alice", headers: { accept: "application/json" } });
    expect((list.json() as { softwareArtifacts?: unknown[] }).softwareArtifacts ?? []).toEqual([]);
  });
});

describe("clone and cascades", () => {
  it("clones a bundle with its artifact tree, and deleting a bundle removes its templates", async () => {
    const id = await createBundle("orig");
    const folder = await server.request({
      method: "POST",
      url: `/api/users/alice/mysoftware/${id}/artifacts`,
      user: "alice",
      headers: { "content-type": "application/json", accept: "application/json" },
      payload: JSON.stringify({ name: "etc", type: "folder", subSoftwareArtifacts: [{ name: "app.conf" }, { name: "sub", type: "folder", subSoftwareArtifacts: [{ name: "deep.txt" }] }] }),
    });
    expect(folder.statusCode, folder.body).toBe(201);
    const clone = await server.request({ method: "POST", url: `/api/users/alice/mysoftware/${id}/clone`, user: "alice", headers: XML, payload: `<ns0:mySoftware ${NS}><name>copy</name></ns0:mySoftware>` });
    expect(clone.statusCode, clone.body).toBe(201);
    const cid = Number(xmlField(clone.body, "dbId"));
    expect(cid).not.toBe(id);
    const arts = (await server.request({ method: "GET", url: `/api/users/alice/mysoftware/${cid}/artifacts`, user: "alice", headers: { accept: "application/json" } })).json() as {
      softwareArtifacts: Array<{ name: string; subSoftwareArtifacts: Array<{ name: string; subSoftwareArtifacts?: Array<{ name: string }> }> }>;
    };
    expect(arts.softwareArtifacts[0]!.name).toBe("etc");
    expect(arts.softwareArtifacts[0]!.subSoftwareArtifacts.map((a) => a.name)).toEqual(["app.conf", "sub"]);
    expect(arts.softwareArtifacts[0]!.subSoftwareArtifacts[1]!.subSoftwareArtifacts!.map((a) => a.name)).toEqual(["deep.txt"]);

    const t = await server.request({ method: "POST", url: `/api/users/alice/mysoftware/${cid}/templates`, user: "alice", headers: XML, payload: `<ns0:containerTemplate ${NS}><distribution><uri>distributions/1</uri></distribution></ns0:containerTemplate>` });
    const tid = Number(xmlField(t.body, "dbId"));
    expect((await server.request({ method: "DELETE", url: `/api/users/alice/mysoftware/${cid}`, user: "alice" })).statusCode).toBe(204);
    expect((await server.request({ method: "GET", url: `/api/users/alice/mysoftware/${cid}/templates/${tid}`, user: "alice" })).statusCode).toBe(404);
    expect(await server.rt.deps.store.templates.get((await server.rt.deps.store.users.getByLogin("alice"))!.id, cid, tid)).toBeUndefined();
    // The original keeps its tree.
    const orig = (await server.request({ method: "GET", url: `/api/users/alice/mysoftware/${id}/artifacts`, user: "alice", headers: { accept: "application/json" } })).json() as { total: number };
    expect(orig.total).toBe(1);
  });
});

describe("artifact downloads", () => {
  let base: string;
  const bytes = Buffer.from(Array.from({ length: 5000 }, (_, i) => i % 251));

  beforeAll(async () => {
    const id = await createBundle("dl");
    const a = await server.request({ method: "POST", url: `/api/users/alice/mysoftware/${id}/artifacts`, user: "alice", headers: XML, payload: `<ns0:softwareArtifact ${NS}><name>data.bin</name></ns0:softwareArtifact>` });
    base = `/api/users/alice/mysoftware/${id}/artifacts/${xmlField(a.body, "dbId")}`;
    const up = await server.request({ method: "POST", url: `${base}/bin/data.bin`, user: "alice", headers: { "content-type": "application/octet-stream" }, payload: bytes });
    expect(up.statusCode, up.body).toBe(201);
  });

  it("hands out a one-time downloadId that works once, without credentials", async () => {
    const art = await server.request({ method: "GET", url: base, user: "alice" });
    const binaryUri = xmlField(art.body, "binaryUri")!.replace(/&amp;/g, "&");
    expect(binaryUri).toMatch(/bin\/data\.bin\?downloadId=[\w-]{20,}$/);
    const head = await server.request({ method: "HEAD", url: `/api/${binaryUri}` });
    expect(head.statusCode).toBe(200);
    expect(head.headers["content-length"]).toBe(String(bytes.length));
    const first = await server.request({ method: "GET", url: `/api/${binaryUri}` });
    expect(first.statusCode).toBe(200);
    expect(first.rawPayload.equals(bytes)).toBe(true);
    expect(first.headers["content-disposition"]).toMatch(/attachment; filename="data.bin"/);
    const second = await server.request({ method: "GET", url: `/api/${binaryUri}` });
    expect(second.statusCode).toBe(401);
    expect(errorMessage(second)).toMatch(/already used or expired/);
  });

  it("serves byte ranges and refuses unsatisfiable ones", async () => {
    const r = await server.request({ method: "GET", url: `${base}/bin/data.bin`, user: "alice", headers: { range: "bytes=100-199" } });
    expect(r.statusCode).toBe(206);
    expect(r.headers["content-range"]).toBe(`bytes 100-199/${bytes.length}`);
    expect(r.rawPayload.equals(bytes.subarray(100, 200))).toBe(true);
    const bad = await server.request({ method: "GET", url: `${base}/bin/data.bin`, user: "alice", headers: { range: "bytes=9000-" } });
    expect(bad.statusCode).toBe(416);
    const wrongName = await server.request({ method: "GET", url: `${base}/bin/other.bin`, user: "alice" });
    expect(wrongName.statusCode).toBe(404);
  });
});

describe("cloud accounts", () => {
  it("stores secrets encrypted, never returns them, and checks the type", async () => {
    const res = await server.request({
      method: "POST",
      url: "/api/users/alice/accounts",
      user: "alice",
      headers: XML,
      payload: `<ns0:credAccount ${NS} ${XSI} xsi:type="ns0:CredAccountDocker"><name>hub</name><endpointUrl>https://registry.example.com</endpointUrl><login>alice</login><password>hunter2-registry-pw</password></ns0:credAccount>`,
    });
    expect(res.statusCode, res.body).toBe(201);
    expect(res.body).toContain('xsi:type="ns0:CredAccountDocker"');
    expect(res.body).not.toContain("hunter2-registry-pw");
    const os = await server.request({
      method: "POST",
      url: "/api/users/alice/accounts",
      user: "alice",
      headers: { "content-type": "application/json", accept: "application/json" },
      payload: JSON.stringify({ xsiType: "CredAccountOpenShift", name: "ocp", registryUrl: "https://registry.ocp.example.com", token: "sha256~openshift-token-value" }),
    });
    expect(os.statusCode, os.body).toBe(201);
    expect(os.body).not.toContain("openshift-token-value");
    const list = await server.request({ method: "GET", url: "/api/users/alice/accounts", user: "alice" });
    expect(xmlField(list.body, "total")).toBe("2");
    expect(list.body).not.toMatch(/hunter2|openshift-token-value/);

    // At rest: not in the database file in clear.
    const db = new Database(path.join(server.config.dataDir, "kiln.db"), { readonly: true });
    const dump = JSON.stringify(db.prepare("select * from cloud_accounts").all());
    db.close();
    expect(dump).not.toMatch(/hunter2|openshift-token-value/);
    const keyFile = path.join(server.config.dataDir, "secret.key");
    expect(statSync(keyFile).mode & 0o777).toBe(0o600);

    const bad = await server.request({
      method: "POST",
      url: "/api/users/alice/accounts",
      user: "alice",
      headers: XML,
      payload: `<ns0:credAccount ${NS}><name>typeless</name></ns0:credAccount>`,
    });
    expect(bad.statusCode).toBe(400);
    expect(errorMessage(bad)).toMatch(/xsi:type/);
    const badUrl = await server.request({
      method: "POST",
      url: "/api/users/alice/accounts",
      user: "alice",
      headers: { "content-type": "application/json" },
      payload: JSON.stringify({ xsiType: "CredAccountDocker", name: "x", endpointUrl: "ftp://x", login: "a", password: "b" }),
    });
    expect(badUrl.statusCode).toBe(400);
    expect(errorMessage(badUrl)).toMatch(/http:\/\/ or https:\/\//);
  });
});

describe("distributions, packages and formats", () => {
  it("lists the configured distribution and the packages of its index", async () => {
    const d = await server.request({ method: "GET", url: "/api/distributions/1", user: "alice", headers: { accept: "application/json" } });
    expect(d.statusCode).toBe(200);
    expect(d.json()).toMatchObject({ name: "Debian", version: "12", arch: "x86_64" });
    const pkgs = await server.request({ method: "GET", url: "/api/distributions/1/pkgs?query=name==*libc*&orderBy=name&count=5", user: "alice" });
    expect(pkgs.statusCode, pkgs.body).toBe(200);
    const names = [...pkgs.body.matchAll(/<name>([^<]+)<\/name>/g)].map((m) => m[1]);
    const index = readFileSync(path.join(MIRROR_DIR, "dists/bookworm/main/binary-amd64/Packages"), "utf8");
    const indexNames = [...index.matchAll(/^Package: (.*libc.*)$/gm)].map((m) => m[1]!).sort();
    expect(names).toEqual(indexNames.slice(0, 5));
    expect(Number(pkgs.headers["x-total-count"])).toBe(indexNames.length);
    const one = await server.request({ method: "GET", url: `/api/${/<uri>(distributions\/1\/pkgs\/\d+)<\/uri>/.exec(pkgs.body)![1]}`, user: "alice" });
    expect(one.statusCode).toBe(200);
    expect(xmlField(one.body, "name")).toBe(names[0]);
  });

  it("lists the container formats and platforms", async () => {
    const f = await server.request({ method: "GET", url: "/api/users/alice/targetformats", user: "alice" });
    expect(xmlField(f.body, "total")).toBe("2");
    expect(f.body).toContain("<type>container</type>");
    const p = await server.request({ method: "GET", url: "/api/users/alice/targetplatforms/2/targetformats", user: "alice", headers: { accept: "application/json" } });
    expect((p.json() as { targetFormats: Array<{ name: string }> }).targetFormats.map((x) => x.name)).toEqual(["OpenShift"]);
    const imf = await server.request({ method: "GET", url: "/api/users/alice/formats", user: "alice" });
    expect(imf.statusCode).toBe(200);
  });

  it("lets only an administrator deactivate a distribution", async () => {
    const res = await server.request({ method: "PUT", url: "/api/distributions/1", user: "alice", headers: XML, payload: `<ns0:distribution ${NS}><active>false</active></ns0:distribution>` });
    expect(res.statusCode).toBe(403);
  });
});
