/**
 * Blob garbage collection against a concurrent reference to the same bytes, on both databases:
 * an upload whose bytes are already in the store (left over, unreferenced) races the collector
 * that is about to delete them. Whatever the interleaving, the uploaded artifact's blob exists.
 * Also as two processes on PostgreSQL sharing a registry blob store: the collector and the
 * uploader each with their own connection pool and their own registry driver.
 */
import { createHash } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BlobStore } from "../../src/blobs/blob-store.js";
import { OciDriver } from "../../src/blobs/oci-driver.js";
import { startRegistry, type TestRegistry } from "../helpers/registry.js";
import { collectBlobs, publishReferenced } from "../../src/store/blob-gc.js";
import { openStore } from "../../src/store/store.js";
import type { BundleRow, Store } from "../../src/store/types.js";
import { postgresTarget, sqliteTarget, type StoreTarget, type TargetDatabase } from "../helpers/databases.js";

let registry: TestRegistry | undefined;
afterAll(async () => registry?.stop());
/** A process's view of a registry blob store: its own driver and local directory. */
async function registryStore(dir: string): Promise<BlobStore> {
  registry ??= await startRegistry();
  return new BlobStore(new OciDriver({ registry: registry.url, prefix: "kiln/gc", localDir: dir }));
}

const cases: Array<{ name: string; target: StoreTarget; registry: boolean }> = [
  { name: "SQLite and files", target: sqliteTarget, registry: false },
  { name: "PostgreSQL and files", target: postgresTarget, registry: false },
  { name: "PostgreSQL and a registry, collector and uploader in two processes", target: postgresTarget, registry: true },
];

describe.each(cases)("blob collection on $name", ({ target, registry: onRegistry }) => {
  let db: TargetDatabase;
  let store: Store;
  let blobs: BlobStore;
  /** The uploader's store and blobs: another process's (its own pool, its own driver) on a registry. */
  let uploaderStore: Store;
  let uploaderBlobs: BlobStore;
  let dir: string;
  let bundle: BundleRow;

  beforeAll(async () => {
    db = await target.create();
    store = await openStore(db.options);
    dir = mkdtempSync(path.join(tmpdir(), "kiln-gc-"));
    blobs = onRegistry ? await registryStore(path.join(dir, "collector")) : BlobStore.open(dir);
    uploaderStore = onRegistry ? await openStore(db.options) : store;
    uploaderBlobs = onRegistry ? await registryStore(path.join(dir, "uploader")) : blobs;
    const user = await store.users.create({ login: "gc", email: null, firstName: null, surname: null, passwordHash: "h", admin: false, active: true, entitlements: [] });
    bundle = await store.bundles.create({ userId: user.id, name: "b", version: null, description: null, release: null, tag: null, license: null, defaultInstallLocation: null, restrictionRule: null, imported: false });
  });
  afterAll(async () => {
    await store?.close();
    if (uploaderStore !== store) await uploaderStore?.close();
    await db?.drop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const fileArtifact = (name: string) =>
    store.artifacts.create({ bundleId: bundle.id, parentId: null, kind: "file", tag: null, name, fullName: null, origName: null, installLocation: null, extract: false, install: false, params: null, version: null, release: null, arch: null, mimeType: null, blobDigest: null, size: null, md5: null, uploadedTime: null, bootOrder: null, bootType: null });

  it("deletes unreferenced blobs and keeps referenced ones", async () => {
    const kept = await blobs.put("kept bytes");
    const dropped = await blobs.put("dropped bytes");
    const a = await fileArtifact("kept");
    await store.artifacts.update(bundle.id, a.id, { blobDigest: kept.digest, size: kept.size });
    await collectBlobs(store, blobs, [kept.digest, dropped.digest, null, "not a digest"]);
    expect(await blobs.has(kept.digest)).toBe(true);
    expect(await blobs.has(dropped.digest)).toBe(false);
  });

  it("never deletes bytes an upload references while it collects them", async () => {
    const bytes = "bytes uploaded twice";
    // Left over by a deleted artifact: in the store, referenced by nothing.
    const leftover = await blobs.put(bytes);
    const a = await fileArtifact("racing");

    // The collector is held just before it deletes (it has found nothing referencing the blob).
    let deleting!: () => void;
    const atDelete = new Promise<void>((resolve) => (deleting = resolve));
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const heldBlobs = Object.create(blobs) as BlobStore;
    heldBlobs.delete = async (digest) => {
      deleting();
      await gate;
      return blobs.delete(digest);
    };
    const collecting = collectBlobs(store, heldBlobs, [leftover.digest]);
    await atDelete;

    // Meanwhile the same bytes are uploaded again: the writer finds them already stored.
    const writer = uploaderBlobs.ingest();
    writer.end(bytes);
    const upload = publishReferenced(uploaderStore, writer, async (tx, blob) => {
      await tx.artifacts.update(bundle.id, a.id, { blobDigest: blob.digest, size: blob.size });
    });
    // Given the time to finish, an upload that did not wait for the collector would be done now.
    await Promise.race([upload, new Promise((r) => setTimeout(r, 300))]);
    release();
    await Promise.all([upload, collecting]);

    expect((await store.artifacts.get(bundle.id, a.id))?.blobDigest).toBe(leftover.digest);
    expect(await blobs.has(leftover.digest)).toBe(true);
  });

  it("drops the bytes and records nothing when the reference fails", async () => {
    const writer = blobs.ingest();
    writer.end("bytes nobody keeps");
    const a = await fileArtifact("failing");
    await expect(
      publishReferenced(store, writer, async (tx, blob) => {
        await tx.artifacts.update(bundle.id, a.id, { blobDigest: blob.digest });
        throw new Error("the row vanished");
      }),
    ).rejects.toThrow("the row vanished");
    expect((await store.artifacts.get(bundle.id, a.id))?.blobDigest).toBeNull();
    expect(await blobs.has(`sha256:${createHash("sha256").update("bytes nobody keeps").digest("hex")}`)).toBe(false);
  });
});
