/**
 * Deleting an artifact's or a bundle file's bytes on a registry blob store that refuses to delete
 * blobs (`storage.delete.enabled: false`): the deletion, or the upload that replaced the bytes,
 * succeeds in Kiln — the objects are gone from the database whatever the registry says — the blob
 * stays in the registry, a warning names it, and it is recorded as a leftover; once the registry
 * is restarted with deletion on, the server's sweeper (driven here) deletes it and its record.
 * A generation that tagged its image and then ends without it (cancelled, failed) deletes the tag,
 * or records it when the registry refuses.
 * Real docker-registry on loopback; a proxy in front of it holds or refuses requests on demand.
 */
import { createHash } from "node:crypto";
import { Writable } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { jsonClient, startTestServer, type JsonStatus, type TestServer } from "../helpers/api.js";
import { startProxy, startRegistry, type Fault, type TestProxy, type TestRegistry } from "../helpers/registry.js";
import { LEFTOVER_RETRY } from "../../src/jobs/leftovers.js";

interface LogLine {
  level: number;
  msg: string;
  digest?: string;
  err?: string;
}

const LEFT = "a blob nothing refers to stays in the blob store: it could not be deleted";

/** The server's sweeper makes no round of its own, and tries again without waiting: the test drives it. */
const DRIVEN = { intervalMs: 3_600_000, retry: { ...LEFTOVER_RETRY, baseDelayMs: 0, maxDelayMs: 0 } };

const sha = (s: string): string => `sha256:${createHash("sha256").update(s).digest("hex")}`;

/** A logger's stream whose JSON lines go to `logs`. */
function logInto(logs: LogLine[]): Writable {
  return new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString("utf8").split("\n")) if (line.trim()) logs.push(JSON.parse(line) as LogLine);
      done();
    },
  });
}

/** The registry's answer to a HEAD of the blob store's blob `digest`. */
async function blobHead(registry: TestRegistry, digest: string): Promise<number> {
  return (await fetch(`${registry.url}/v2/kiln/blobs/blobs/${digest}`, { method: "HEAD" })).status;
}

describe("artifacts and bundle files on a registry that does not allow deletion", () => {
  let registry: TestRegistry;
  let server: TestServer;
  const logs: LogLine[] = [];

  beforeAll(async () => {
    registry = await startRegistry({ deleteEnabled: false });
    const stream = logInto(logs);
    server = await startTestServer({ env: { KILN_BLOB_STORE: `oci+${registry.url}/kiln` }, logger: { level: "info", stream }, sweeper: DRIVEN });
    await server.createUser("alice");
  });
  afterAll(async () => {
    await server?.close();
    await registry?.stop();
  });

  /** A warning names `digest` as left behind, the registry still has it, and it is recorded to be tried again. */
  async function leftBehind(digest: string): Promise<void> {
    expect(logs.find((l) => l.level === 40 && l.msg === LEFT && l.digest === digest)).toMatchObject({ err: expect.stringMatching(/answered 405 to DELETE/) });
    expect(await blobHead(registry, digest)).toBe(200);
    expect((await server.rt.deps.store.leftovers.list()).find((r) => r.name === digest)).toMatchObject({ kind: "blob", attempts: 1, lastError: expect.stringMatching(/405/) });
  }

  it("replacing and deleting an artifact's bytes succeed; the old blobs stay, and are named", async () => {
    const { api } = jsonClient(server, "alice");
    const b = (await api<{ dbId: number }>("POST", "users/alice/mysoftware", { name: "leftovers", version: "1" })).json;
    const upload = (said: number, body: string) =>
      server.request({ method: "POST", url: `/api/users/alice/mysoftware/${b.dbId}/artifacts/${said}/bin/f.txt`, user: "alice", headers: { "content-type": "text/plain" }, payload: body });
    const one = (await api<{ dbId: number }>("POST", `users/alice/mysoftware/${b.dbId}/artifacts`, { name: "one", type: "file" })).json;
    const two = (await api<{ dbId: number }>("POST", `users/alice/mysoftware/${b.dbId}/artifacts`, { name: "two", type: "file" })).json;

    expect((await upload(one.dbId, "first bytes of one")).statusCode).toBe(201);
    const replaced = await upload(one.dbId, "second bytes of one");
    expect(replaced.statusCode, replaced.body).toBe(201);
    await leftBehind(sha("first bytes of one"));

    expect((await api("DELETE", `users/alice/mysoftware/${b.dbId}/artifacts/${one.dbId}`)).status).toBe(204);
    expect((await api("GET", `users/alice/mysoftware/${b.dbId}/artifacts/${one.dbId}`)).status).toBe(404);
    await leftBehind(sha("second bytes of one"));

    expect((await upload(two.dbId, "bytes of two")).statusCode).toBe(201);
    expect((await api("DELETE", `users/alice/mysoftware/${b.dbId}/artifacts`)).status).toBe(204);
    expect((await api<{ softwareArtifacts?: unknown[] }>("GET", `users/alice/mysoftware/${b.dbId}/artifacts`)).json.softwareArtifacts ?? []).toEqual([]);
    await leftBehind(sha("bytes of two"));
  });

  it("replacing and deleting a bundle's license succeed; the old blobs stay, and are named", async () => {
    const { api } = jsonClient(server, "alice");
    const b = (await api<{ dbId: number }>("POST", "users/alice/mysoftware", { name: "licensed", version: "1", license: { name: "MIT" } })).json;
    const put = (body: string) =>
      server.request({ method: "POST", url: `/api/users/alice/mysoftware/${b.dbId}/licenses/1/COPYING`, user: "alice", headers: { "content-type": "text/plain" }, payload: body });
    expect((await put("first license text")).statusCode).toBe(201);
    const again = await put("second license text");
    expect(again.statusCode, again.body).toBe(201);
    await leftBehind(sha("first license text"));

    const license = (await api<{ license: { uri: string } }>("GET", `users/alice/mysoftware/${b.dbId}`)).json.license;
    expect((await server.request({ method: "DELETE", url: `/api/${license.uri}`, user: "alice" })).statusCode).toBe(204);
    expect((await server.request({ method: "GET", url: `/api/${license.uri}`, user: "alice" })).statusCode).toBe(404);
    await leftBehind(sha("second license text"));
  });

  it("once the registry allows deletion, the sweeper deletes what was left, and forgets it", async () => {
    const left = (await server.rt.deps.store.leftovers.list()).map((r) => r.name);
    expect(left.sort()).toEqual([sha("first bytes of one"), sha("second bytes of one"), sha("bytes of two"), sha("first license text"), sha("second license text")].sort());
    // Still refused: tried, and kept for later.
    expect(await server.rt.sweeper!.sweep()).toEqual({ removed: 0, dropped: 0, failed: 5 });
    await registry.restart({ deleteEnabled: true });
    expect(await server.rt.sweeper!.sweep()).toEqual({ removed: 5, dropped: 0, failed: 0 });
    expect(await server.rt.deps.store.leftovers.list()).toEqual([]);
    for (const digest of left) expect(await blobHead(registry, digest)).toBe(404);
    expect(logs.filter((l) => l.msg === "deleted a blob the blob store had left behind")).toHaveLength(5);
  });
});

describe("a generation that tagged its image and does not record it", () => {
  let registry: TestRegistry;
  let proxy: TestProxy;
  let server: TestServer;
  const logs: LogLine[] = [];
  /** The tags the image's generations made (`repository:tag`), as their manifests' PUTs name them. */
  const tagged: string[] = [];
  /** What the proxy does with each request once an image is tagged (undefined: forward it). */
  let afterTagging: ((r: { method: string; url: string }) => Fault | undefined) | undefined;
  /** Holds the registry's answer to a tag's manifest PUT (the tag is made; the generation does not know yet). */
  let tagAnswer: Promise<void> | undefined;
  /** Holds the registry's answer to the image file's upload (the blob is stored; the generation does not know yet). */
  let uploadAnswer: Promise<void> | undefined;
  let uploadedFile: string | undefined;

  beforeAll(async () => {
    registry = await startRegistry({ deleteEnabled: true });
    proxy = await startProxy(registry.port, {
      fault: (r) => (tagged.length > 0 ? afterTagging?.(r) : undefined),
      rewriteHeaders: (r) => {
        const m = /^\/v2\/(.+)\/manifests\/([^/]+)$/.exec(r.url);
        if (r.method === "PUT" && r.status === 201 && m && !m[2]!.startsWith("sha256:")) tagged.push(`${m[1]}:${m[2]}`);
      },
      holdResponse: (r) => {
        if (r.method === "PUT" && r.status === 201 && /\/manifests\/[^/]+$/.test(r.url) && !r.url.includes("/manifests/sha256:")) return tagAnswer;
        // The first upload completed once tagged is the image file's.
        if (uploadAnswer && tagged.length > 0 && r.method === "PUT" && r.status === 201 && r.url.includes("/blobs/uploads/")) {
          uploadedFile ??= new URL(r.url, "http://x").searchParams.get("digest") ?? undefined;
          return uploadAnswer;
        }
        return undefined;
      },
    });
    const stream = logInto(logs);
    server = await startTestServer({ env: { KILN_BLOB_STORE: `oci+${proxy.url}/kiln` }, logger: { level: "info", stream }, sweeper: DRIVEN });
    await server.createUser("alice");
  });
  afterAll(async () => {
    await server?.close();
    await proxy?.stop();
    await registry?.stop();
  });

  /** Starts a compressed image's generation (it tags the image, then writes its file); its status uri. */
  async function startGeneration(name: string, on: TestServer = server): Promise<string> {
    const { api } = jsonClient(on, "alice");
    tagged.length = 0;
    const b = await api<{ uri: string }>("POST", "users/alice/mysoftware", { name, version: "1.0" });
    const t = await api<{ uri: string }>("POST", `${b.json.uri}/templates`, { distribution: { name: "Debian", version: "12", arch: "x86_64" } });
    expect(t.status, JSON.stringify(t.json)).toBe(201);
    const img = await api<{ statusUri: string }>("POST", `${t.json.uri}/images`, { targetFormat: { name: "Docker" }, compress: true });
    expect(img.status, JSON.stringify(img.json)).toBe(201);
    return img.json.statusUri;
  }

  async function manifestHead(name: string): Promise<number> {
    const colon = name.lastIndexOf(":");
    const res = await fetch(`${registry.url}/v2/${name.slice(0, colon)}/manifests/${name.slice(colon + 1)}`, {
      method: "HEAD",
      headers: { accept: "application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json" },
    });
    return res.status;
  }

  it("cancelled as it tags the image (the registry made the tag, its answer is held): the tag is deleted", async () => {
    let release!: () => void;
    tagAnswer = new Promise<void>((resolve) => (release = resolve));
    try {
      const statusUri = await startGeneration("cancelled-after-tagging");
      const { api, waitFor } = jsonClient(server, "alice");
      await waitFor(statusUri, () => tagged.length > 0, 280_000);
      expect(await manifestHead(tagged[0]!)).toBe(200);
      const cancel = await api<JsonStatus>("DELETE", statusUri);
      expect(cancel.json.cancelled, JSON.stringify(cancel.json)).toBe(true);
    } finally {
      release();
      tagAnswer = undefined;
    }
    expect(await manifestHead(tagged[0]!)).toBe(404);
    expect(logs.find((l) => l.msg === "registry tag deletion")).toBeDefined();
    expect(await server.rt.deps.store.leftovers.list()).toEqual([]);
  }, 300_000);

  it("failed after tagging, with the registry refusing to delete the tag: the tag is recorded, and the sweeper deletes it later", async () => {
    // Once tagged, the image file's upload is refused (the job fails), and so are manifest deletions.
    let refuseDeletion = true;
    afterTagging = (r) => {
      if (r.method === "POST" && r.url.includes("/blobs/uploads/")) return { status: 400, body: '{"errors":[{"code":"BLOB_UPLOAD_INVALID","message":"refused by the test"}]}' };
      if (refuseDeletion && r.method === "DELETE" && r.url.includes("/manifests/")) return { status: 405, body: '{"errors":[{"code":"UNSUPPORTED","message":"The operation is unsupported."}]}' };
      return undefined;
    };
    try {
      const statusUri = await startGeneration("failed-after-tagging");
      const done = await jsonClient(server, "alice").waitFor(statusUri, undefined, 280_000);
      expect(done.error, JSON.stringify(done)).toBe(true);
      expect(tagged).toHaveLength(1);
      expect(await manifestHead(tagged[0]!)).toBe(200);
      const [left, ...more] = await server.rt.deps.store.leftovers.list();
      expect(more).toEqual([]);
      expect(left).toMatchObject({ kind: "tag", name: `${proxy.host}/${tagged[0]}`, attempts: 1 });

      expect(await server.rt.sweeper!.sweep()).toEqual({ removed: 0, dropped: 0, failed: 1 });
      refuseDeletion = false;
      expect(await server.rt.sweeper!.sweep()).toEqual({ removed: 1, dropped: 0, failed: 0 });
    } finally {
      afterTagging = undefined;
    }
    expect(await manifestHead(tagged[0]!)).toBe(404);
    expect(await server.rt.deps.store.leftovers.list()).toEqual([]);
  }, 300_000);

  it("cancelled while its image file uploads (the registry stored it, its answer is held): the job stops, records no file, and leaves neither the file nor the tag", async () => {
    let release!: () => void;
    uploadAnswer = new Promise<void>((resolve) => (release = resolve));
    uploadedFile = undefined;
    try {
      const statusUri = await startGeneration("cancelled-uploading");
      const { api, waitFor } = jsonClient(server, "alice");
      await waitFor(statusUri, () => uploadedFile !== undefined, 280_000);
      expect(await blobHead(registry, uploadedFile!)).toBe(200);
      const cancel = await api<JsonStatus>("DELETE", statusUri);
      expect(cancel.status, JSON.stringify(cancel.json)).toBeLessThan(300);
      // Well within the registry client's 60 s idle timeout: the cancel stops the upload itself,
      // not a timeout of the held request.
      const done = await waitFor(statusUri, undefined, 30_000);
      expect(done.cancelled, JSON.stringify(done)).toBe(true);
      const image = (await api<{ fileSize?: number; downloadUri?: string }>("GET", statusUri.replace(/\/status$/, ""))).json;
      expect(image.downloadUri).toBeUndefined();
    } finally {
      release();
      uploadAnswer = undefined;
    }
    expect(await blobHead(registry, uploadedFile!)).toBe(404);
    expect(await manifestHead(tagged[0]!)).toBe(404);
    expect(await server.rt.deps.store.leftovers.list()).toEqual([]);
  }, 300_000);

  it("stopped by a shutdown after tagging (its job resumes elsewhere): the tag stays, for the next attempt", async () => {
    const other = await startTestServer({ env: { KILN_BLOB_STORE: `oci+${proxy.url}/kiln` } });
    let release!: () => void;
    tagAnswer = new Promise<void>((resolve) => (release = resolve));
    try {
      await other.createUser("alice");
      const statusUri = await startGeneration("stopped-after-tagging", other);
      await jsonClient(other, "alice").waitFor(statusUri, () => tagged.length > 0, 280_000);
    } finally {
      await other.close();
      release();
      tagAnswer = undefined;
    }
    // Given back to the queue: the next attempt tags the same reference, which must still be there meanwhile.
    expect(await manifestHead(tagged[0]!)).toBe(200);
  }, 300_000);
});
