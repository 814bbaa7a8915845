/**
 * Packages' build dates, which a `Packages` index does not give: the mtime dpkg-deb stamps on a
 * `.deb`'s first ar member (see {@link firstMemberMtime}), read from the package cache when the
 * `.deb` is there, else from the mirror with a 68-byte range request. Dates are remembered by
 * the `.deb`'s SHA256 (its bytes, so its date, never change), and in-flight lookups are shared,
 * so a list asks for each `.deb` at most once.
 */
import type { BlobStore, Digest } from "../blobs/blob-store.js";
import { ArFormatError, FIRST_HEADER_END, firstMemberMtime } from "./deb-ar.js";
import { readFileStart, type Mirror } from "./mirror.js";
import { unsafeFilenameReason } from "./package.js";
import type { BinaryPackage } from "./types.js";

/** Range requests to the mirror in flight at once, for one list. */
const CONCURRENCY = 8;

/** Options of {@link BuildDates.learn}. */
export interface LearnOptions {
  /** The most packages whose date is looked up (the others stay unknown this time). */
  limit: number;
  /** Stops the lookups still to start or in flight: their dates stay unknown. */
  signal?: AbortSignal;
}

export interface BuildDates {
  /** The package's build date if already known (nothing is read). */
  known(pkg: BinaryPackage): Date | undefined;
  /**
   * Looks up the dates of the packages not known yet, at most `limit` of them, a few at a time.
   * Never throws: a date that cannot be read (mirror unreachable, not a `.deb`, no mtime) stays
   * unknown, and is tried again next time unless the bytes themselves carry none.
   */
  learn(pkgs: readonly BinaryPackage[], options: LearnOptions): Promise<void>;
}

export function buildDates(mirror: Mirror, debs: BlobStore): BuildDates {
  /** By SHA256 of the `.deb`; null: its bytes carry no date. */
  const dates = new Map<string, Date | null>();
  const inFlight = new Map<string, Promise<void>>();
  const keyOf = (p: BinaryPackage): string | undefined => (p.sha256 !== undefined && /^[0-9a-f]{64}$/.test(p.sha256) ? p.sha256 : undefined);

  async function head(p: BinaryPackage, sha256: string, signal: AbortSignal | undefined): Promise<Buffer> {
    try {
      return await readFileStart(debs.path(`sha256:${sha256}` as Digest), FIRST_HEADER_END);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
    }
    return mirror.readStart(p.filename!, FIRST_HEADER_END, signal);
  }

  async function lookup(p: BinaryPackage, sha256: string, signal: AbortSignal | undefined): Promise<void> {
    try {
      const mtime = firstMemberMtime(await head(p, sha256, signal));
      dates.set(sha256, mtime === undefined ? null : new Date(mtime * 1000));
    } catch (err) {
      // Bytes that are not a .deb stay so; a network failure may pass.
      if (err instanceof ArFormatError) dates.set(sha256, null);
    }
  }

  return {
    known(pkg) {
      const key = keyOf(pkg);
      return (key !== undefined && dates.get(key)) || undefined;
    },

    async learn(pkgs, { limit, signal }) {
      const todo: Array<{ pkg: BinaryPackage; key: string }> = [];
      const seen = new Set<string>();
      for (const pkg of pkgs) {
        if (todo.length >= limit) break;
        const key = keyOf(pkg);
        if (key === undefined || dates.has(key) || seen.has(key) || pkg.filename === undefined || unsafeFilenameReason(pkg.filename) !== undefined) continue;
        seen.add(key);
        todo.push({ pkg, key });
      }
      let next = 0;
      const worker = async (): Promise<void> => {
        while (next < todo.length && !signal?.aborted) {
          const { pkg, key } = todo[next++]!;
          let pending = inFlight.get(key);
          if (!pending) {
            pending = lookup(pkg, key, signal).finally(() => inFlight.delete(key));
            inFlight.set(key, pending);
          }
          await pending;
        }
      };
      await Promise.all(Array.from({ length: Math.min(CONCURRENCY, todo.length) }, worker));
    },
  };
}
