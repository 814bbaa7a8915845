/**
 * The client beyond pushes: tags and tag deletion on docker-registry (with deletion on and off),
 * and the transport's defences — bounded error bodies, verified TLS, stalled connections,
 * credentials kept to the registry's own origin, `Retry-After` parsing.
 */
import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import http from "node:http";
import https from "node:https";
import type { AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import { Readable } from "node:stream";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { BlobStore, type Digest } from "../../src/blobs/blob-store.js";
import { KilnError } from "../../src/domain/errors.js";
import type { BuiltImage } from "../../src/oci/types.js";
import { RegistryClient } from "../../src/registry/client.js";
import { RegistryError } from "../../src/registry/errors.js";
import { pushImage } from "../../src/registry/push.js";
import { DEFAULT_RETRY_POLICY, parseRetryAfter, retryDelay } from "../../src/registry/retry.js";
import { makeImage } from "../fixtures/images.js";
import { run, startProxy, startRegistry, type TestRegistry } from "../helpers/registry.js";

let work: string;
let blobs: BlobStore;
let one: BuiltImage;
let two: BuiltImage;

beforeAll(async () => {
  work = await mkdtemp(path.join(os.tmpdir(), "kiln-client-"));
  blobs = BlobStore.open(path.join(work, "blobs"));
  one = await makeImage(blobs, { seed: "client-one" });
  two = await makeImage(blobs, { seed: "client-two" });
});
afterAll(async () => rm(work, { recursive: true, force: true }));

/** A throwaway HTTP(S) server on loopback. */
async function serve(handler: http.RequestListener, tls?: { key: string; cert: string }): Promise<{ url: string; host: string; close: () => Promise<void> }> {
  const server = tls ? https.createServer(tls, handler) : http.createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `${tls ? "https" : "http"}://127.0.0.1:${port}`,
    host: `127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

describe("tags and deleteTag on docker-registry", () => {
  let registry: TestRegistry;
  let client: RegistryClient;
  beforeAll(async () => {
    registry = await startRegistry();
    client = new RegistryClient(registry.url);
    for (const [image, tag] of [
      [one, "a"],
      [one, "b"],
      [two, "c"],
    ] as const) {
      await pushImage(image, blobs, { registry: registry.url, repository: "kiln/del", tag }, {});
    }
  });
  afterAll(async () => {
    client?.close();
    await registry?.stop();
  });

  test("tags lists every tag; an unknown repository has none", async () => {
    expect((await client.tags("kiln/del")).sort()).toEqual(["a", "b", "c"]);
    expect(await client.tags("kiln/nothing-here")).toEqual([]);
  });

  test("a tag sharing its manifest with another tag is not deleted (it would untag both)", async () => {
    const outcome = await client.deleteTag("kiln/del", "a");
    expect(outcome).toMatchObject({ deleted: false, reason: "shared" });
    expect((await client.tags("kiln/del")).sort()).toEqual(["a", "b", "c"]);
  });

  test("a tag alone on its manifest is deleted by digest; pulling it then fails", async () => {
    const outcome = await client.deleteTag("kiln/del", "c");
    expect(outcome).toEqual({ deleted: true, method: "digest", digest: two.dockerManifestDigest });
    expect((await client.tags("kiln/del")).sort()).toEqual(["a", "b"]);
    await expect(run("skopeo", ["inspect", "--tls-verify=false", `docker://${registry.host}/kiln/del:c`])).rejects.toThrow(/manifest unknown/i);
  });

  test("an absent tag is reported as such", async () => {
    expect(await client.deleteTag("kiln/del", "nope")).toMatchObject({ deleted: false, reason: "absent" });
  });

  test("an OCI 1.1 registry that deletes by tag is asked to do just that", async () => {
    const proxy = await startProxy(registry.port, { fault: (r) => (r.method === "DELETE" && r.url.endsWith("/manifests/b") ? { status: 202 } : undefined) });
    const c = new RegistryClient(proxy.url);
    try {
      expect(await c.deleteTag("kiln/del", "b")).toEqual({ deleted: true, method: "tag", digest: one.dockerManifestDigest });
      expect(proxy.records.filter((r) => r.method === "DELETE").map((r) => r.url)).toEqual(["/v2/kiln/del/manifests/b"]);
    } finally {
      c.close();
      await proxy.stop();
    }
  });

  test("a registry with deletion disabled is reported, not thrown", async () => {
    const locked = await startRegistry({ deleteEnabled: false });
    const c = new RegistryClient(locked.url);
    try {
      await pushImage(one, blobs, { registry: locked.url, repository: "kiln/locked", tag: "v1" }, {});
      const outcome = await c.deleteTag("kiln/locked", "v1");
      expect(outcome).toMatchObject({ deleted: false, reason: "unsupported" });
      expect(await c.tags("kiln/locked")).toEqual(["v1"]);
    } finally {
      c.close();
      await locked.stop();
    }
  });
});

describe("transport defences", () => {
  test("an error body is read up to 64 KiB: a registry that never ends one does not hang the client", async () => {
    let written = 0;
    const server = await serve((_req, res) => {
      res.writeHead(500, { "content-type": "application/json" });
      const head = '{"errors":[{"code":"HUGE","message":"';
      res.write(head);
      // 1 MiB of message, then the response is left open forever.
      const chunk = "x".repeat(64 << 10);
      for (let i = 0; i < 16; i++) {
        res.write(chunk);
        written += chunk.length;
      }
    });
    const client = new RegistryClient(server.url, { retry: { attempts: 1 }, idleTimeoutMs: 30_000 });
    try {
      const t0 = Date.now();
      const err = await client.ping().catch((e: unknown) => e);
      expect(Date.now() - t0).toBeLessThan(5000);
      expect(err).toBeInstanceOf(RegistryError);
      // Cut at 64 KiB the JSON does not parse: the message is the status, short and clean.
      expect((err as Error).message).toMatch(new RegExp(`^${server.host.replace(/\./g, "\\.")} answered 500 to GET /v2/`));
      expect((err as Error).message.length).toBeLessThan(300);
      expect(written).toBe(16 * (64 << 10));
    } finally {
      client.close();
      await server.close();
    }
  });

  test("TLS is verified by default; a private CA can be trusted explicitly", async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), "kiln-tls-"));
    try {
      await run("openssl", [
        "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
        "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", path.join(dir, "key.pem"), "-out", path.join(dir, "cert.pem"),
      ]);
      const tls = { key: await readFile(path.join(dir, "key.pem"), "utf8"), cert: await readFile(path.join(dir, "cert.pem"), "utf8") };
      let requests = 0;
      const server = await serve((_req, res) => {
        requests++;
        res.writeHead(200, { "content-type": "application/json" }).end("{}");
      }, tls);
      try {
        const strict = new RegistryClient(server.host, { retry: { attempts: 3, baseDelayMs: 10 } });
        const err = await strict.ping().catch((e: unknown) => e);
        strict.close();
        expect(err).toBeInstanceOf(RegistryError);
        expect((err as Error).message).toMatch(/TLS certificate of 127\.0\.0\.1:\d+ cannot be verified/);
        expect(requests).toBe(0);
        // Not retried: a certificate does not fix itself.
        expect(strict.requests).toBe(1);

        const trusting = new RegistryClient(server.host, { ca: tls.cert });
        await trusting.ping();
        trusting.close();
        expect(requests).toBe(1);
      } finally {
        await server.close();
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test("a stalled connection times out and is retried, then fails naming the registry", async () => {
    let connections = 0;
    const server = await serve(() => {
      connections++; // never answers
    });
    const client = new RegistryClient(server.url, { idleTimeoutMs: 200, retry: { attempts: 2, baseDelayMs: 10 } });
    try {
      const err = await client.ping().catch((e: unknown) => e);
      expect(err).toBeInstanceOf(RegistryError);
      expect((err as Error).message).toBe(`cannot reach ${server.host}: no traffic for 200 ms (gave up after 2 tries)`);
      expect(connections).toBe(2);
    } finally {
      client.close();
      await server.close();
    }
  });

  test("credentials go to the registry's origin only, not to an upload location elsewhere", async () => {
    const seen: Array<{ where: string; method: string; authorization: string | undefined }> = [];
    const storage = await serve((req, res) => {
      seen.push({ where: "storage", method: req.method!, authorization: req.headers.authorization });
      const hash = createHash("sha256");
      req.on("data", (c: Buffer) => hash.update(c));
      req.on("end", () => res.writeHead(201, { "docker-content-digest": `sha256:${hash.digest("hex")}` }).end());
    });
    const registry = await serve((req, res) => {
      seen.push({ where: "registry", method: req.method!, authorization: req.headers.authorization });
      if (!req.headers.authorization) return void res.writeHead(401, { "www-authenticate": 'Basic realm="r"' }).end();
      if (req.method === "POST") return void res.writeHead(202, { location: `${storage.url}/upload/1?sig=abc` }).end();
      res.writeHead(404).end();
    });
    const client = new RegistryClient(registry.url, { credentials: { username: "u", password: "p4ssw0rd" } });
    try {
      const data = Buffer.from("blob bytes");
      const digest = `sha256:${createHash("sha256").update(data).digest("hex")}` as Digest;
      await client.ping();
      await client.uploadBlob("ns/app", digest, data.length, (s, e) => Readable.from([data.subarray(s, e + 1)]));
      expect(seen.filter((s) => s.where === "registry" && s.method === "POST").every((s) => s.authorization?.startsWith("Basic "))).toBe(true);
      expect(seen.filter((s) => s.where === "storage")).toEqual([{ where: "storage", method: "PUT", authorization: undefined }]);
    } finally {
      client.close();
      await registry.close();
      await storage.close();
    }
  });
});

describe("local failures", () => {
  test("a blob that cannot be read is our error, not the registry's, and is not retried", async () => {
    let puts = 0;
    const registry = await serve((req, res) => {
      if (req.method === "POST") return void res.writeHead(202, { location: "/v2/ns/app/blobs/uploads/1" }).end();
      puts++;
      req.resume();
      req.on("end", () => res.writeHead(201).end());
    });
    const client = new RegistryClient(registry.url, { retry: { baseDelayMs: 10 } });
    try {
      const missing = path.join(work, "no-such-blob");
      const err = await client
        .uploadBlob("ns/app", `sha256:${"1".repeat(64)}`, 10, () => createReadStream(missing))
        .catch((e: unknown) => e);
      expect(err).toBeInstanceOf(KilnError);
      expect((err as KilnError).kind).toBe("internal");
      expect((err as Error).message).toBe("cannot read the blob being uploaded (ENOENT)");
      expect(puts).toBeLessThanOrEqual(1);
    } finally {
      client.close();
      await registry.close();
    }
  });
});

describe("retry timing", () => {
  test("Retry-After as seconds or an HTTP date", () => {
    const now = Date.parse("2024-05-01T00:00:00Z");
    expect(parseRetryAfter("1", now)).toBe(1000);
    expect(parseRetryAfter("Wed, 01 May 2024 00:00:05 GMT", now)).toBe(5000);
    expect(parseRetryAfter("Tue, 30 Apr 2024 00:00:00 GMT", now)).toBe(0);
    expect(parseRetryAfter("soon", now)).toBeUndefined();
    expect(parseRetryAfter(undefined, now)).toBeUndefined();
  });

  test("backoff doubles with jitter and is capped; Retry-After wins but is capped too", () => {
    const p = DEFAULT_RETRY_POLICY;
    for (let attempt = 1; attempt <= 6; attempt++) {
      const step = Math.min(p.maxDelayMs, p.baseDelayMs * 2 ** (attempt - 1));
      for (let i = 0; i < 20; i++) {
        const d = retryDelay(p, attempt);
        expect(d).toBeGreaterThanOrEqual(step / 2);
        expect(d).toBeLessThanOrEqual(step);
      }
    }
    expect(retryDelay(p, 1, 1000)).toBe(1000);
    expect(retryDelay(p, 1, 3_600_000)).toBe(p.maxRetryAfterMs);
  });
});
