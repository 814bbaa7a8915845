/**
 * One-time download keys: what opens one download without credentials. A key is 144 random
 * bits; only its sha256 is stored, and the download it opens uses it up (server/downloads.ts).
 */
import { createHash, randomBytes } from "node:crypto";
import type { Store } from "../store/types.js";

export function hashDownloadKey(key: string): string {
  return createHash("sha256").update(key, "utf8").digest("hex");
}

/**
 * The keys this process handed out and may hand out again, per store and per `user target`:
 * an object fetched again and again (a client polling an image) answers the same key until it is
 * used or half its life is spent, instead of a new row per GET. Only the key's hash is stored;
 * the key itself lives here, in memory, so a restart simply mints new ones.
 */
const issuedKeys = new WeakMap<object, Map<string, { key: string; expiresAt: number }>>();
const ISSUED_KEYS_KEPT = 10_000;

/**
 * A one-time key (144 random bits) for `target`, valid for `ttlMs`: the live one handed out
 * before when it still has at least half its life left, else a new one (and the expired keys of
 * every user are purged then). Only its hash is stored.
 */
export async function issueDownloadKey(store: Pick<Store, "downloadKeys">, userId: number, target: string, ttlMs: number, now = new Date()): Promise<string> {
  let issued = issuedKeys.get(store);
  if (!issued) issuedKeys.set(store, (issued = new Map()));
  const slot = `${userId} ${target}`;
  const kept = issued.get(slot);
  if (kept && kept.expiresAt - now.getTime() >= ttlMs / 2) {
    // Still unused (another process may have consumed it)?
    const live = await store.downloadKeys.peek(hashDownloadKey(kept.key), target, now);
    if (live && live.userId === userId) return kept.key;
  }
  await store.downloadKeys.deleteExpired(now);
  const key = randomBytes(18).toString("base64url");
  const expiresAt = now.getTime() + ttlMs;
  await store.downloadKeys.create({ keyHash: hashDownloadKey(key), userId, target, expiresAt: new Date(expiresAt) });
  issued.delete(slot);
  if (issued.size >= ISSUED_KEYS_KEPT) issued.delete(issued.keys().next().value!);
  issued.set(slot, { key, expiresAt });
  return key;
}
