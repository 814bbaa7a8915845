/**
 * A bundle's license file and logo: one of each, uploaded as raw bytes (streamed into the blob
 * store, referenced atomically with their publication), downloaded and deleted. They travel with
 * the bundle in its exports and imports (`license.source`, `sourceLogo`) and with its clones.
 */
import type { Digest } from "../blobs/blob-store.js";
import { checkFileName } from "../domain/artifacts.js";
import { fail } from "../domain/errors.js";
import type { BundleFileKind, BundleFileRow, BundleRow, UserRow } from "../store/types.js";
import type { Logo, MySoftware } from "../wire/index.js";
import { collectBlobs, publishReferenced } from "../store/blob-gc.js";
import { ingestUpload, refusingEarly, type Upload } from "./artifacts.js";
import type { LibraryDeps, OperationLog } from "./context.js";
import type { StoredFile } from "./images.js";
import { loadBundle, type BundleRef } from "./load.js";
import { bundleWire, uris } from "./representations.js";

/** The name a license uploaded without one gets. */
const DEFAULT_NAMES: Record<BundleFileKind, string> = { license: "LICENSE", logo: "logo" };

export function bundleFileOperations(deps: LibraryDeps) {
  const { store } = deps;

  async function loadFile(owner: UserRow, ref: BundleRef, kind: BundleFileKind, id: number): Promise<{ bundle: BundleRow; file: BundleFileRow }> {
    const bundle = await loadBundle(store, owner, ref.msid);
    const file = await store.bundleFiles.get(bundle.id, kind);
    if (!file || file.id !== id) fail("notFound", `no ${kind} ${id} on software bundle ${bundle.id}`);
    return { bundle, file };
  }

  async function answer(owner: UserRow, b: BundleRow): Promise<MySoftware> {
    const rows = await store.artifacts.listAll(b.id);
    return bundleWire(owner.login, b, rows, await store.bundleFiles.list(b.id));
  }

  return {
    /**
     * Stores the bundle's license or logo (replacing the one before, whose bytes are collected
     * if nothing else uses them, or left and said in `log` if the blob store refuses); answers the
     * bundle as it now is.
     */
    async upload(owner: UserRow, ref: BundleRef, kind: BundleFileKind, fileName: string | undefined, upload: Upload, log: OperationLog): Promise<MySoftware> {
      const bundle = await refusingEarly(upload, () => loadBundle(store, owner, ref.msid));
      const before = await store.bundleFiles.get(bundle.id, kind);
      const name = checkFileName(fileName ?? before?.fileName ?? DEFAULT_NAMES[kind]);
      const writer = await ingestUpload(deps, upload);
      const type = upload.contentType;
      await publishReferenced(store, writer, (tx, blob) =>
        tx.bundleFiles.put({
          bundleId: bundle.id,
          kind,
          fileName: name,
          mimeType: type && type !== "application/x-www-form-urlencoded" ? type : "application/octet-stream",
          blobDigest: blob.digest,
          size: blob.size,
          md5: blob.md5,
        }),
      );
      if (before) await collectBlobs(store, deps.blobs, [before.blobDigest], log);
      return answer(owner, bundle);
    },

    /** The logo as its own object (what a logo upload answers). */
    async logo(owner: UserRow, ref: BundleRef): Promise<Logo> {
      const b = await loadBundle(store, owner, ref.msid);
      return (await answer(owner, b)).logo!;
    },

    /** The file, when `fileName` (if given) is its name. */
    async file(owner: UserRow, ref: BundleRef, kind: BundleFileKind, id: number, fileName?: string): Promise<StoredFile> {
      const { file } = await loadFile(owner, ref, kind, id);
      if (fileName !== undefined && fileName !== file.fileName) fail("notFound", `the ${kind} ${id} has no file named ${fileName}`);
      return { digest: file.blobDigest as Digest, size: file.size, fileName: file.fileName, lastModified: file.lastModified, contentType: file.mimeType };
    },

    /** Deletes the file, then its bytes unless shared (left, and said in `log`, if the blob store refuses). */
    async delete(owner: UserRow, ref: BundleRef, kind: BundleFileKind, id: number, log: OperationLog): Promise<void> {
      const { bundle, file } = await loadFile(owner, ref, kind, id);
      await store.bundleFiles.delete(bundle.id, kind);
      await collectBlobs(store, deps.blobs, [file.blobDigest], log);
    },
  };
}

export type BundleFileOperations = ReturnType<typeof bundleFileOperations>;
