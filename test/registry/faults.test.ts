/**
 * What goes wrong mid-push: a `429` with `Retry-After`, a registry that dies, a user who cancels.
 * A proxy between client and registry injects the faults and slows the uploads down enough to
 * interrupt them.
 */
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { BlobStore } from "../../src/blobs/blob-store.js";
import { isKilnError } from "../../src/domain/errors.js";
import type { BuiltImage } from "../../src/oci/types.js";
import { RegistryError } from "../../src/registry/errors.js";
import { pushImage } from "../../src/registry/push.js";
import type { RetryEvent } from "../../src/registry/retry.js";
import { makeImage } from "../fixtures/images.js";
import { run, startProxy, startRegistry, type TestRegistry } from "../helpers/registry.js";

let work: string;
let blobs: BlobStore;
let registry: TestRegistry;
let small: BuiltImage;
let big: BuiltImage;

beforeAll(async () => {
  work = await mkdtemp(path.join(os.tmpdir(), "kiln-faults-"));
  blobs = BlobStore.open(path.join(work, "blobs"));
  registry = await startRegistry();
  small = await makeImage(blobs, { seed: "faults-small" });
  big = await makeImage(blobs, { seed: "faults-big", bigLayerBytes: 4 << 20 });
});
afterAll(async () => {
  await registry?.stop();
  await rm(work, { recursive: true, force: true });
});

/** Resolves once `predicate` holds (polling), or fails after `ms`. */
async function until(predicate: () => boolean, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!predicate()) {
    if (Date.now() > end) throw new Error("condition not reached in time");
    await new Promise((r) => setTimeout(r, 10));
  }
}

async function untilAsync(predicate: () => Promise<boolean>, ms: number): Promise<void> {
  const end = Date.now() + ms;
  while (!(await predicate())) {
    if (Date.now() > end) throw new Error("condition not reached in time");
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Established TCP connections to `port` from this machine (the client's ends), as the kernel lists them. */
async function clientSockets(port: number): Promise<number> {
  const { stdout } = await run("ss", ["-Htn", "state", "established", `( dport = :${port} )`]);
  return stdout.split("\n").filter((l) => l.trim() !== "").length;
}

describe("faults during a push", () => {
  test("a 429 with Retry-After: 1 is waited out, then the push goes on", async () => {
    let manifestPuts = 0;
    const proxy = await startProxy(registry.port, {
      fault: (r) =>
        r.method === "PUT" && r.url.includes("/manifests/") && ++manifestPuts === 1
          ? { status: 429, headers: { "retry-after": "1" }, body: '{"errors":[{"code":"TOOMANYREQUESTS","message":"slow down"}]}' }
          : undefined,
    });
    const retries: RetryEvent[] = [];
    try {
      const result = await pushImage(small, blobs, { registry: proxy.url, repository: "kiln/limited", tag: "v1" }, {}, { clientOptions: { onRetry: (e) => retries.push(e) } });
      expect(result.manifestDigest).toBe(small.dockerManifestDigest);
      expect(retries).toHaveLength(1);
      expect(retries[0]).toMatchObject({ status: 429, delayMs: 1000 });
      expect(retries[0]!.reason).toContain("TOOMANYREQUESTS");
      const puts = proxy.records.filter((r) => r.method === "PUT" && r.url.includes("/manifests/"));
      expect(puts.map((r) => r.status)).toEqual([429, 201]);
      expect(puts[1]!.at - puts[0]!.at).toBeGreaterThanOrEqual(1000);
    } finally {
      await proxy.stop();
    }
  });

  test("a registry killed mid-push: retries with backoff, then an error naming the registry", async () => {
    const victim = await startRegistry();
    const proxy = await startProxy(victim.port, { bytesPerSecond: 2 << 20 });
    const retries: RetryEvent[] = [];
    try {
      const pushing = pushImage(big, blobs, { registry: proxy.url, repository: "kiln/crash", tag: "v1" }, {}, {
        clientOptions: { retry: { attempts: 4, baseDelayMs: 100 }, onRetry: (e) => retries.push(e) },
      });
      const outcome = pushing.then(
        () => undefined,
        (e: unknown) => e,
      );
      await until(() => proxy.records.some((r) => r.method === "PATCH" || (r.method === "PUT" && r.bytesReceived > 256 << 10)));
      // The registry dies, and with it every connection to its address.
      await victim.kill();
      await proxy.stop();
      const err = await outcome;
      expect(err).toBeInstanceOf(RegistryError);
      const e = err as RegistryError;
      expect(e.message).toContain(`cannot reach ${proxy.host}`);
      expect(e.message).toMatch(/gave up after 4 tries/);
      expect(e.retryable).toBe(false);
      // Three waits between four tries, growing.
      const forCrash = retries.filter((r) => r.reason.includes(proxy.host));
      expect(forCrash.length).toBeGreaterThanOrEqual(3);
    } finally {
      await proxy.stop().catch(() => undefined);
      await victim.stop();
    }
  });

  test("cancel mid-push settles within 2 s and leaves no connection or request behind", async () => {
    const proxy = await startProxy(registry.port, { bytesPerSecond: 1 << 20 });
    try {
      const controller = new AbortController();
      const outcome = pushImage(big, blobs, { registry: proxy.url, repository: "kiln/cancelled", tag: "v1" }, {}, { signal: controller.signal }).then(
        () => undefined,
        (e: unknown) => e,
      );
      await until(() => proxy.records.some((r) => r.bytesReceived > 512 << 10));
      const port = Number(proxy.host.split(":")[1]);
      expect(await clientSockets(port)).toBeGreaterThan(0);
      const t0 = Date.now();
      controller.abort();
      const err = await outcome;
      const elapsed = Date.now() - t0;
      expect(isKilnError(err, "cancelled")).toBe(true);
      expect(elapsed).toBeLessThan(2000);
      // Every socket of the push is closed on the client's side (the proxy may still be reading
      // what the kernel buffered), and nothing more arrives afterwards.
      await untilAsync(async () => (await clientSockets(port)) === 0, 1000);
      const seen = proxy.records.length;
      await new Promise((r) => setTimeout(r, 500));
      expect(proxy.records.length).toBe(seen);
      expect(proxy.records.some((r) => r.url.includes("/manifests/"))).toBe(false);
    } finally {
      await proxy.stop();
    }
  });

  test("an already cancelled signal sends nothing", async () => {
    const proxy = await startProxy(registry.port);
    try {
      const controller = new AbortController();
      controller.abort();
      const err = await pushImage(small, blobs, { registry: proxy.url, repository: "kiln/never", tag: "v1" }, {}, { signal: controller.signal }).catch((e: unknown) => e);
      expect(isKilnError(err, "cancelled")).toBe(true);
      expect(proxy.records).toEqual([]);
    } finally {
      await proxy.stop();
    }
  });

  test("a 500 on a blob HEAD is retried; the image is complete afterwards", async () => {
    let heads = 0;
    const proxy = await startProxy(registry.port, { fault: (r) => (r.method === "HEAD" && ++heads <= 2 ? { status: 500 } : undefined) });
    try {
      await pushImage(small, blobs, { registry: proxy.url, repository: "kiln/flaky", tag: "v1" }, {}, { clientOptions: { retry: { baseDelayMs: 20 } } });
      const { stdout } = await run("skopeo", ["inspect", "--tls-verify=false", `docker://${registry.host}/kiln/flaky:v1`]);
      expect((JSON.parse(stdout) as { Digest: string }).Digest).toBe(small.dockerManifestDigest);
      expect(proxy.records.filter((r) => r.method === "HEAD" && r.status === 500)).toHaveLength(2);
    } finally {
      await proxy.stop();
    }
  });
});
