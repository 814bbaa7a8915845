/**
 * Leftovers on a real registry blob store (docker-registry on loopback): a blob and a tag that
 * the registry refused to delete (`storage.delete.enabled: false`) are recorded, tried again
 * while it refuses, and removed — record and all — once it is restarted with deletion on the
 * same storage; a blob referenced again before its retry is kept and its record dropped. On
 * SQLite and PostgreSQL; and two sweepers of two processes on one PostgreSQL database delete
 * each leftover once. The sweepers are driven (sweep()), never waited for.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BlobStore, type Digest } from "../../src/blobs/blob-store.js";
import { OciDriver } from "../../src/blobs/oci-driver.js";
import { LEFTOVER_RETRY, LeftoverSweeper, untagImage } from "../../src/jobs/leftovers.js";
import { JobRunner, type JobContext } from "../../src/jobs/runner.js";
import { collectBlobs, publishReferenced } from "../../src/store/blob-gc.js";
import { openStore } from "../../src/store/store.js";
import type { BundleRow, Store } from "../../src/store/types.js";
import { registryTarget } from "../../src/domain/image-names.js";
import { makeImage } from "../fixtures/images.js";
import { postgresTarget, sqliteTarget, type StoreTarget, type TargetDatabase } from "../helpers/databases.js";
import { startRegistry, type TestRegistry } from "../helpers/registry.js";

interface Line {
  level: "info" | "warn" | "error";
  msg: string;
  fields: Record<string, unknown>;
}

function recordingLog(): { lines: Line[]; info(o: object, m: string): void; warn(o: object, m: string): void; error(o: object, m: string): void } {
  const lines: Line[] = [];
  return {
    lines,
    info: (o, m) => void lines.push({ level: "info", msg: m, fields: o as Record<string, unknown> }),
    warn: (o, m) => void lines.push({ level: "warn", msg: m, fields: o as Record<string, unknown> }),
    error: (o, m) => void lines.push({ level: "error", msg: m, fields: o as Record<string, unknown> }),
  };
}

/** No wait between tries, and no round on a timer: the test drives every round. */
const DRIVEN = { intervalMs: 3_600_000, retry: { ...LEFTOVER_RETRY, baseDelayMs: 0, maxDelayMs: 0 } };

/** The registry's answer to a HEAD of manifest `tag` of `repository`. */
async function manifestHead(registry: TestRegistry, repository: string, tag: string): Promise<number> {
  const res = await fetch(`${registry.url}/v2/${repository}/manifests/${tag}`, {
    method: "HEAD",
    headers: { accept: "application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json" },
  });
  return res.status;
}

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** A process's registry blob store: its own driver and local directory. */
function registryBlobs(registry: TestRegistry): BlobStore {
  const dir = mkdtempSync(path.join(tmpdir(), "kiln-leftovers-"));
  dirs.push(dir);
  return new BlobStore(new OciDriver({ registry: registry.url, prefix: "kiln", localDir: dir }));
}

async function newBundle(store: Store): Promise<BundleRow> {
  const user = await store.users.create({ login: `u${Math.random().toString(36).slice(2, 8)}`, email: null, firstName: null, surname: null, passwordHash: "h", admin: false, active: true, entitlements: [] });
  return store.bundles.create({ userId: user.id, name: "b", version: null, description: null, release: null, tag: null, license: null, defaultInstallLocation: null, restrictionRule: null, imported: false });
}

describe.each<StoreTarget>([sqliteTarget, postgresTarget])("leftovers on $dialect and a registry", (target) => {
  let registry: TestRegistry;
  let db: TargetDatabase;
  let store: Store;
  let blobs: BlobStore;

  beforeAll(async () => {
    registry = await startRegistry({ deleteEnabled: false });
    db = await target.create();
    store = await openStore(db.options);
    blobs = registryBlobs(registry);
  });
  afterAll(async () => {
    await store?.close();
    await db?.drop();
    await registry?.stop();
  });

  it("records what the registry refused, tries it again while it refuses, and removes it once deletion is on", async () => {
    const log = recordingLog();
    const driver = blobs.driver as OciDriver;
    const dropped = await blobs.put(`bytes nobody needs on ${target.dialect}`);
    const reused = await blobs.put(`bytes needed again on ${target.dialect}`);
    await collectBlobs(store, blobs, [dropped.digest, reused.digest], log);
    const image = await makeImage(blobs, { seed: `leftover-${target.dialect}` });
    const reference = await driver.tagImage(image, blobs, "alice/app", "1.0-1");
    await untagImage({ store, blobs }, reference, log, { image: 7 });
    expect(await manifestHead(registry, "kiln/alice/app", "1.0-1")).toBe(200);
    expect((await store.leftovers.list()).map((r) => [r.kind, r.name, r.attempts])).toEqual([
      ["blob", dropped.digest, 1],
      ["blob", reused.digest, 1],
      ["tag", reference, 1],
    ]);
    expect((await store.leftovers.list()).every((r) => /405|not allow/.test(r.lastError ?? ""))).toBe(true);

    // Still refused: each is tried, counted, and left for later.
    const sweeper = new LeftoverSweeper({ store, blobs, log, ...DRIVEN });
    expect(await sweeper.sweep()).toEqual({ removed: 0, dropped: 0, failed: 3 });
    expect((await store.leftovers.list()).map((r) => r.attempts)).toEqual([2, 2, 2]);
    expect(log.lines.filter((l) => l.msg === "the blob store still did not delete what it left behind; trying again later")).toHaveLength(3);

    // A new upload of the same bytes references one of them again before the next try.
    const bundle = await newBundle(store);
    const a = await store.artifacts.create({ bundleId: bundle.id, parentId: null, kind: "file", tag: null, name: "f", fullName: null, origName: null, installLocation: null, extract: false, install: false, params: null, version: null, release: null, arch: null, mimeType: null, blobDigest: null, size: null, md5: null, uploadedTime: null, bootOrder: null, bootType: null });
    const writer = blobs.ingest();
    writer.end(`bytes needed again on ${target.dialect}`);
    await publishReferenced(store, writer, (tx, blob) => tx.artifacts.update(bundle.id, a.id, { blobDigest: blob.digest }));

    await registry.restart({ deleteEnabled: true });
    expect(await sweeper.sweep()).toEqual({ removed: 2, dropped: 1, failed: 0 });
    expect(await store.leftovers.list()).toEqual([]);
    expect(await blobs.has(dropped.digest as Digest)).toBe(false);
    expect(await blobs.has(reused.digest as Digest)).toBe(true);
    expect(await manifestHead(registry, "kiln/alice/app", "1.0-1")).toBe(404);
    expect(log.lines.filter((l) => l.level === "info").map((l) => [l.msg, l.fields.name])).toEqual(
      expect.arrayContaining([
        ["deleted a blob the blob store had left behind", dropped.digest],
        ["a blob left in the blob store is referenced again: it stays, and is no longer to delete", reused.digest],
        ["deleted a registry tag the registry had left behind", reference],
      ]),
    );
    // Nothing is left to do.
    expect(await sweeper.sweep()).toEqual({ removed: 0, dropped: 0, failed: 0 });
  });

  it("keeps a tag an image is tagged with again, or is being generated for, and drops its record", async () => {
    await registry.restart({ deleteEnabled: true });
    const log = recordingLog();
    const driver = blobs.driver as OciDriver;
    const bundle = await newBundle(store);
    const owner = (await store.users.get(bundle.userId))!;
    const [dist] = await store.distributions.sync([{ name: "Debian", version: "12", arch: "x86_64" }]);
    const template = await store.templates.create({ userId: owner.id, bundleId: bundle.id, distributionId: dist!.id });
    const newImage = async () => {
      const job = await store.jobs.create({ kind: "generate", userId: owner.id });
      const img = await store.images.create({ userId: owner.id, bundleId: bundle.id, templateId: template.id, distributionId: dist!.id, jobId: job.id, formatId: 1, compress: false, entrypoint: null, name: "app", version: "3.0" });
      const target = registryTarget(owner.login, img);
      const image = await makeImage(blobs, { seed: `tag-in-use-${target.tag}-${owner.login}` });
      return { job, img, reference: await driver.tagImage(image, blobs, target.repository, target.tag) };
    };
    // Left by deleted images of this template: since then, its revisions were given again.
    const done = await newImage();
    await store.images.update(done.img.id, { registryReference: done.reference });
    await store.jobs.finish(done.job.id, { state: "complete" });
    const generating = await newImage();
    expect(generating.reference).toBe(driver.referenceOf(`${owner.login}/app`, "3.0-2"));
    const orphan = await driver.tagImage(await makeImage(blobs, { seed: `orphan-${target.dialect}` }), blobs, `${owner.login}/app`, "orphan");
    for (const r of [done.reference, generating.reference, orphan]) await store.leftovers.record("tag", r, "the registry refused", 0);

    const sweeper = new LeftoverSweeper({ store, blobs, log, ...DRIVEN });
    expect(await sweeper.sweep()).toEqual({ removed: 1, dropped: 2, failed: 0 });
    expect(await store.leftovers.list()).toEqual([]);
    expect(await manifestHead(registry, `kiln/${owner.login}/app`, "3.0-1")).toBe(200);
    expect(await manifestHead(registry, `kiln/${owner.login}/app`, "3.0-2")).toBe(200);
    expect(await manifestHead(registry, `kiln/${owner.login}/app`, "orphan")).toBe(404);
  });
});

describe("two sweepers on one PostgreSQL database", () => {
  let registry: TestRegistry;
  let db: TargetDatabase;
  const stores: Store[] = [];

  beforeAll(async () => {
    registry = await startRegistry({ deleteEnabled: false });
    db = await postgresTarget.create();
    for (let i = 0; i < 2; i++) stores.push(await openStore(db.options));
  });
  afterAll(async () => {
    for (const s of stores) await s.close();
    await db?.drop();
    await registry?.stop();
  });
  it("delete each leftover once: never both the same", async () => {
    const log = recordingLog();
    const [one, two] = [registryBlobs(registry), registryBlobs(registry)];
    const digests: string[] = [];
    for (let i = 0; i < 12; i++) digests.push((await one.put(`leftover number ${i}`)).digest);
    await collectBlobs(stores[0]!, one, digests, log);
    expect(await stores[0]!.leftovers.list()).toHaveLength(12);
    await registry.restart({ deleteEnabled: true });

    // Every blob deletion either process makes, by digest.
    const deletions = new Map<string, number>();
    const counting = (b: BlobStore): BlobStore => {
      const c = Object.create(b) as BlobStore;
      c.delete = async (digest) => {
        deletions.set(digest, (deletions.get(digest) ?? 0) + 1);
        return b.delete(digest);
      };
      return c;
    };
    const sweepers = [new LeftoverSweeper({ store: stores[0]!, blobs: counting(one), log, ...DRIVEN, batch: 2 }), new LeftoverSweeper({ store: stores[1]!, blobs: counting(two), log, ...DRIVEN, batch: 2 })];
    const results = await Promise.all(sweepers.map((s) => s.sweep()));
    expect(results[0]!.removed + results[1]!.removed).toBe(12);
    expect(results.every((r) => r.dropped === 0 && r.failed === 0)).toBe(true);
    expect([...deletions.keys()].sort()).toEqual([...digests].sort());
    expect([...deletions.values()].every((n) => n === 1)).toBe(true);
    expect(await stores[1]!.leftovers.list()).toEqual([]);
    for (const d of digests) expect(await one.has(d as Digest)).toBe(false);
  });
});

describe("a sweeper whose database is away", () => {
  it("logs each failed round, goes on with the next, and stops cleanly", async () => {
    const db = await sqliteTarget.create();
    const store = await openStore(db.options);
    await store.close();
    const log = recordingLog();
    const dir = mkdtempSync(path.join(tmpdir(), "kiln-sweeper-"));
    dirs.push(dir);
    const sweeper = new LeftoverSweeper({ store, blobs: BlobStore.open(dir), log, intervalMs: 5 });
    sweeper.start();
    try {
      while (log.lines.filter((l) => l.level === "error").length < 2) await new Promise((r) => setTimeout(r, 5));
    } finally {
      await sweeper.stop();
      await db.drop();
    }
    expect(log.lines.find((l) => l.level === "error")).toMatchObject({ msg: "cannot sweep the leftovers of the blob store", fields: { err: expect.any(Error) } });
  });
});

/**
 * What a generation asks before it removes the tag it made (generate.ts): whether its job runs
 * again under another claim, which would tag the same reference. A real runner on SQLite, whose
 * clock the test moves to let a lease lapse.
 */
describe("whether a job that ends without its results resumes elsewhere", () => {
  it("not when it failed or was cancelled here; yes when another worker took it over", async () => {
    const db = await sqliteTarget.create();
    let nowMs = Date.now();
    const store = await openStore({ ...db.options, now: () => new Date(nowMs) });
    const dataDir = mkdtempSync(path.join(tmpdir(), "kiln-resumes-"));
    dirs.push(dataDir);
    const answers = new Map<string, boolean>();
    let scenario: (ctx: JobContext, jobId: number) => Promise<never>;
    const runner = new JobRunner({ store, dataDir, handlers: { generate: (job, ctx) => scenario(ctx, job.id) }, concurrency: { generate: 1 }, leaseMs: 60_000 });
    await runner.start();
    try {
      const user = await store.users.create({ login: "resumer", email: null, firstName: null, surname: null, passwordHash: "h", admin: false, active: true, entitlements: [] });
      const run = async (name: string, handler: typeof scenario, then?: (jobId: number) => Promise<unknown>): Promise<void> => {
        scenario = async (ctx, jobId) => {
          try {
            return await handler(ctx, jobId);
          } catch (err) {
            answers.set(name, await ctx.resumesElsewhere(err));
            throw err;
          }
        };
        const job = await store.jobs.create({ kind: "generate", userId: user.id });
        runner.wake();
        await then?.(job.id);
        while (!answers.has(name)) await new Promise((r) => setTimeout(r, 10));
      };

      await run("failed", async () => {
        throw new Error("the build failed");
      });
      let started!: () => void;
      const running = new Promise<void>((resolve) => (started = resolve));
      await run(
        "cancelled",
        async (ctx) => {
          started();
          await new Promise((_, reject) => ctx.signal.addEventListener("abort", () => reject(ctx.signal.reason as Error), { once: true }));
          throw new Error("unreachable");
        },
        async (jobId) => {
          await running;
          await runner.cancel(jobId);
        },
      );
      await run("taken over", async (ctx, jobId) => {
        // This worker was paused past its lease, and another one claimed the job meanwhile.
        nowMs += 120_000;
        const other = await store.jobs.claimNext(["generate"], { owner: "another worker", ms: 60_000, maxAttempts: 3, interruptedMessage: "interrupted" });
        expect(other?.id).toBe(jobId);
        throw await store.transaction((tx) => ctx.fence(tx)).then(
          () => new Error("the fence let a worker whose lease was taken over write"),
          (err: unknown) => err,
        );
      });
      expect(Object.fromEntries(answers)).toEqual({ failed: false, cancelled: false, "taken over": true });
    } finally {
      await runner.stop();
      await store.close();
      await db.drop();
    }
  });
});
