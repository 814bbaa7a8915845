/**
 * Blob locks (see BlobLockRepo): the lock on a digest is its row, taken with an upsert that
 * writes it. PostgreSQL makes a second transaction's upsert of the same row wait until the first
 * ends; SQLite runs one writing transaction at a time, so the write alone excludes the others.
 */
import type { BlobLockRepo } from "../types.js";
import type { RepoContext } from "./context.js";

export function blobLockRepo(ctx: RepoContext): BlobLockRepo {
  const { db } = ctx;
  return {
    async lock(digest) {
      if (!db.isTransaction) throw new Error("a blob lock is only held inside a transaction");
      await db
        .insertInto("blob_locks")
        .values({ digest })
        // DO NOTHING would not lock a row another transaction already committed: update it.
        .onConflict((oc) => oc.column("digest").doUpdateSet({ digest }))
        .execute();
    },

    async forget(digest) {
      await db.deleteFrom("blob_locks").where("digest", "=", digest).execute();
    },
  };
}
