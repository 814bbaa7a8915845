/**
 * Unpacking `.deb` files for the rootfs: each package's data.tar is streamed once into a
 * sequential content file on disk (md5 of every file computed in the same pass) and described by
 * a manifest; a later build of the same `.deb` (same sha256) reads the manifest and never
 * decompresses it again. Recording into a {@link Rootfs} happens in install order, while the
 * next packages are still decompressing.
 *
 * Cache layout (one directory per `.deb`, named by its sha256; both files appear by rename, the
 * content first, so a manifest is never visible before the bytes it points into):
 *
 *     <cacheDir>/unpacked/
 *       <sha256 of the .deb>/
 *         content        every regular file's bytes, back to back, in archive order
 *         manifest.json  control fields and members, entries with metadata, offsets, md5
 */
import { randomBytes, createHash } from "node:crypto";
import { mkdir, open, readdir, readFile, rename, rm, stat, unlink, writeFile, type FileHandle } from "node:fs/promises";
import path from "node:path";
import { KilnError } from "../domain/errors.js";
import { sha256File } from "../domain/file-hash.js";
import { processRunning } from "../domain/processes.js";
import { openDeb, XzLanes, type DebDataEntry, type DebPackage, type XzDecoder } from "../debian/deb.js";
import { makeParagraph } from "../debian/control.js";
import { packageFromParagraph } from "../debian/package.js";
import type { BinaryPackage, Paragraph } from "../debian/types.js";
import { ContentFile, type RangeContent } from "./content.js";
import { normaliseArchivePath, UnsafePathError } from "./paths.js";
import type { Rootfs } from "./rootfs.js";
import type { InstalledPackage, NodeType } from "./types.js";

/** Bump when the manifest's meaning changes: older cache entries are then unpacked again. */
export const MANIFEST_FORMAT = 2;

/** One entry of a package's data.tar, as recorded in its manifest. */
export interface ManifestEntry {
  /** Normalised path as shipped (`bin/bash`, `""` for the archive's `./`). */
  path: string;
  type: NodeType;
  mode: number;
  uid: number;
  gid: number;
  /** Symlink target (verbatim), or a hard link's target as a normalised shipped path. */
  linkname?: string;
  devmajor?: number;
  devminor?: number;
  /** Regular files: size, offset in the content file, md5 (hex). */
  size?: number;
  offset?: number;
  md5?: string;
}

/** The on-disk manifest of one unpacked `.deb`. */
interface ManifestFile {
  format: number;
  sha256: string;
  debSize: number;
  /** ar mtime of the package, seconds. */
  date: number;
  dataMember: string;
  control: Array<[string, string]>;
  /** Control members other than `control`, base64. */
  controlFiles: Record<string, string>;
  contentSize: number;
  entries: ManifestEntry[];
}

/** An unpacked package, ready to be recorded into a tree. */
export interface UnpackedPackage {
  /** sha256 (hex) of the `.deb`: the cache key. */
  sha256: string;
  /** The `.deb` it came from. */
  debPath: string;
  debSize: number;
  /** The package as its control file describes it. */
  control: Paragraph;
  controlFiles: ReadonlyMap<string, Buffer>;
  /** The package's build date (ar mtime), for the build clock. */
  date: Date;
  /** Data entries in archive order. */
  entries: readonly ManifestEntry[];
  /** Content of every regular file entry, by index in {@link entries}. */
  content(index: number): RangeContent;
  /** True when this came from the manifest cache (nothing was decompressed). */
  fromCache: boolean;
}

/** Where a package comes from. */
export interface PackageSource {
  /** Path of the `.deb`. */
  deb: string;
  /** What the index says about it; derived from its control file when absent. */
  pkg?: BinaryPackage;
  /** sha256 (hex) of the `.deb` when already known and verified (saves hashing it again). */
  sha256?: string;
}

export interface UnpackOptions {
  /** Root of Kiln's work cache; manifests and content go under `<cacheDir>/unpacked/`. */
  cacheDir: string;
  /** Decompress even when a manifest exists (the fresh result replaces it). */
  noCache?: boolean;
  xz?: XzDecoder;
  /** Shared xz processes ({@link unpackPackages} makes its own). */
  lanes?: XzLanes;
  signal?: AbortSignal;
  /**
   * Called with each file's size before its bytes are written (a cached package's whole content
   * at once); throwing stops the unpacking and leaves nothing behind.
   */
  charge?: (bytes: number) => void;
}

function unsafe(pkgName: string, name: string, why: string): KilnError {
  return new KilnError("unsafeArchive", `${pkgName}: entry ${JSON.stringify(name)} ${why}`);
}

/**
 * Removes the half-written content and manifest files (`*.tmp-<pid>-<random>`) of unpackings a
 * killed process left in the cache; those of a running process (a `kiln build` sharing the
 * cache) stay. Answers how many went.
 */
export async function sweepUnpackLeftovers(cacheDir: string): Promise<number> {
  const root = path.join(cacheDir, "unpacked");
  let dirs: string[];
  try {
    dirs = await readdir(root);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return 0;
    throw err;
  }
  let removed = 0;
  for (const d of dirs) {
    const names = await readdir(path.join(root, d)).catch(() => [] as string[]);
    for (const n of names) {
      const writer = /\.tmp-(\d+)-[0-9a-f]{12}$/.exec(n);
      if (!writer || processRunning(Number(writer[1]))) continue;
      await rm(path.join(root, d, n), { force: true });
      removed++;
    }
  }
  return removed;
}

function packageDir(cacheDir: string, sha256: string): string {
  if (!/^[0-9a-f]{64}$/.test(sha256)) throw new KilnError("badRequest", `"${sha256}" is not a sha256`);
  return path.join(cacheDir, "unpacked", sha256);
}

function fromManifest(m: ManifestFile, debPath: string, dir: string, fromCache: boolean): UnpackedPackage {
  const file = new ContentFile(path.join(dir, "content"));
  const entries = m.entries;
  return {
    sha256: m.sha256,
    debPath,
    debSize: m.debSize,
    control: makeParagraph(m.control),
    controlFiles: new Map(Object.entries(m.controlFiles).map(([k, v]) => [k, Buffer.from(v, "base64")])),
    date: new Date(m.date * 1000),
    entries,
    content(index: number): RangeContent {
      const e = entries[index];
      if (!e || e.type !== "file") throw new Error(`entry ${index} of ${debPath} is not a regular file`);
      return file.range(e.offset!, e.size!, e.md5);
    },
    fromCache,
  };
}

async function readManifest(dir: string, sha256: string): Promise<ManifestFile | undefined> {
  let m: ManifestFile;
  try {
    m = JSON.parse(await readFile(path.join(dir, "manifest.json"), "utf8")) as ManifestFile;
  } catch {
    return undefined;
  }
  if (m.format !== MANIFEST_FORMAT || m.sha256 !== sha256 || !Array.isArray(m.entries)) return undefined;
  // A content file of the wrong size (disk trouble, someone's cleanup) means decompressing again.
  const size = await stat(path.join(dir, "content")).then((s) => s.size, () => -1);
  return size === m.contentSize ? m : undefined;
}

/**
 * The sequential writer of a content file. Tar entries arrive in pieces of every size; copying
 * them into 1 MiB buffers (two, so one fills while the other is written) makes a few large
 * writes out of thousands of small ones.
 */
class ContentSink {
  private static readonly SIZE = 1 << 20;
  private buffers = [Buffer.allocUnsafe(ContentSink.SIZE), Buffer.allocUnsafe(ContentSink.SIZE)];
  private pending: Array<Promise<unknown>> = [Promise.resolve(), Promise.resolve()];
  private current = 0;
  private used = 0;
  private position = 0;

  private constructor(private readonly fh: FileHandle) {}

  static async create(file: string): Promise<ContentSink> {
    return new ContentSink(await open(file, "wx"));
  }

  /** Queues `chunk`; resolves once it is safe to pass the next one. */
  async append(chunk: Buffer): Promise<void> {
    let off = 0;
    while (off < chunk.length) {
      const n = chunk.copy(this.buffers[this.current]!, this.used, off);
      this.used += n;
      off += n;
      if (this.used === ContentSink.SIZE) await this.flush();
    }
  }

  private async flush(): Promise<void> {
    if (this.used === 0) return;
    const i = this.current;
    const at = this.position;
    const len = this.used;
    const write = this.writeAll(this.buffers[i]!, len, at);
    // Awaited later (before the buffer is reused, or at close); a failure must not count as unhandled meanwhile.
    write.catch(() => undefined);
    this.pending[i] = write;
    this.position += len;
    this.current = 1 - i;
    this.used = 0;
    // Wait for the other buffer's write before filling it again.
    await this.pending[this.current];
  }

  private async writeAll(buf: Buffer, len: number, at: number): Promise<void> {
    for (let off = 0; off < len; ) {
      const { bytesWritten } = await this.fh.write(buf, off, len - off, at + off);
      if (bytesWritten <= 0) throw new Error("the content file stopped taking bytes");
      off += bytesWritten;
    }
  }

  /** Writes what is left and closes the file. */
  async close(): Promise<void> {
    try {
      await this.flush();
      await Promise.all(this.pending);
    } finally {
      await this.fh.close();
    }
  }

  /** Closes the file without caring what was written (the caller deletes it). */
  async abandon(): Promise<void> {
    await Promise.allSettled(this.pending);
    await this.fh.close().catch(() => undefined);
  }
}

/**
 * An entry's manifest record, its name and links checked (everything but a file's bytes).
 * Kept apart from {@link extract}'s loop, as {@link copyBody} is: small functions are optimised
 * once, where one large loop body was recompiled at every new shape of input.
 */
function manifestEntry(e: DebDataEntry, pkgName: string, shipped: ReadonlyMap<string, ManifestEntry>): ManifestEntry {
  // tar-stream decodes names as UTF-8; a byte that is not becomes U+FFFD, and two different
  // names could then meet on one path. Debian's names are UTF-8: anything else is refused.
  if (e.name.includes("\uFFFD") || e.linkname?.includes("\uFFFD")) throw unsafe(pkgName, e.name, "has a name or link target that is not valid UTF-8");
  let p: string;
  try {
    p = normaliseArchivePath(e.name);
  } catch (err) {
    if (err instanceof UnsafePathError) throw unsafe(pkgName, e.name, err.message);
    throw err;
  }
  const entry: ManifestEntry = { path: p, type: e.type, mode: e.mode, uid: e.uid, gid: e.gid };
  if (e.type === "symlink") {
    if (!e.linkname) throw unsafe(pkgName, e.name, "is a symlink without a target");
    if (e.linkname.includes("\0")) throw unsafe(pkgName, e.name, "has a symlink target with a NUL byte");
    entry.linkname = e.linkname;
  } else if (e.type === "hardlink") {
    let target: string;
    try {
      target = normaliseArchivePath(e.linkname ?? "");
    } catch (err) {
      if (err instanceof UnsafePathError) throw unsafe(pkgName, e.name, `is a hard link whose target ${err.message}`);
      throw err;
    }
    const first = shipped.get(target);
    if (!first) throw unsafe(pkgName, e.name, `is a hard link to ${JSON.stringify(e.linkname)}, which is not earlier in the package`);
    if (first.type !== "file" && first.type !== "hardlink") throw unsafe(pkgName, e.name, `is a hard link to ${JSON.stringify(e.linkname)}, which is not a regular file`);
    // Links to links point at the first file, so the tree only ever resolves one step.
    entry.linkname = first.type === "hardlink" ? first.linkname! : target;
  } else if (e.type === "char" || e.type === "block") {
    entry.devmajor = e.devmajor ?? 0;
    entry.devminor = e.devminor ?? 0;
  }
  return entry;
}

/** A file's bytes appended to the content file; answers how many there were and their md5. */
async function copyBody(e: DebDataEntry, out: ContentSink): Promise<{ size: number; md5: string }> {
  const md5 = createHash("md5");
  let size = 0;
  for await (const chunk of e.body) {
    md5.update(chunk);
    size += chunk.length;
    await out.append(chunk);
  }
  return { size, md5: md5.digest("hex") };
}

/**
 * Streams the data member of `deb` into a new content file and manifest under `dir`, checking
 * every name on the way. Throws `unsafeArchive` for a hostile entry, leaving nothing behind.
 */
async function extract(deb: DebPackage, sha256: string, dir: string, options: UnpackOptions): Promise<ManifestFile> {
  const pkgName = deb.control.get("Package") ?? path.basename(deb.path);
  await mkdir(dir, { recursive: true });
  const tag = `${process.pid}-${randomBytes(6).toString("hex")}`;
  const tmpContent = path.join(dir, `content.tmp-${tag}`);
  const tmpManifest = path.join(dir, `manifest.json.tmp-${tag}`);
  const out = await ContentSink.create(tmpContent);
  const entries: ManifestEntry[] = [];
  const shipped = new Map<string, ManifestEntry>();
  let offset = 0;
  try {
    for await (const e of deb.dataEntries({ xz: options.xz ?? "auto", ...(options.lanes ? { lanes: options.lanes } : {}) })) {
      if (options.signal?.aborted) throw new KilnError("cancelled", `unpacking ${pkgName} was cancelled`);
      const entry = manifestEntry(e, pkgName, shipped);
      if (e.type === "file") {
        options.charge?.(e.size);
        const { size, md5 } = await copyBody(e, out);
        if (size !== e.size) throw new KilnError("badRequest", `${deb.path}: entry ${JSON.stringify(e.name)} holds ${size} bytes, its header says ${e.size}`);
        entry.size = size;
        entry.offset = offset;
        entry.md5 = md5;
        offset += size;
      }
      entries.push(entry);
      shipped.set(entry.path, entry);
    }
    await out.close();
    const manifest: ManifestFile = {
      format: MANIFEST_FORMAT,
      sha256,
      debSize: deb.size,
      date: Math.floor(deb.date.getTime() / 1000),
      dataMember: deb.dataMember.name,
      control: deb.control.fields.map(([k, v]) => [k, v]),
      controlFiles: Object.fromEntries([...deb.controlFiles].map(([k, v]) => [k, v.toString("base64")])),
      contentSize: offset,
      entries,
    };
    await writeFile(tmpManifest, JSON.stringify(manifest));
    // Content first: a manifest must never point into bytes that are not there yet.
    await rename(tmpContent, path.join(dir, "content"));
    await rename(tmpManifest, path.join(dir, "manifest.json"));
    return manifest;
  } catch (err) {
    await out.abandon();
    await unlink(tmpContent).catch(() => undefined);
    await unlink(tmpManifest).catch(() => undefined);
    throw err;
  }
}

/**
 * Unpacks one `.deb` into the cache (or finds it there) without touching any tree.
 *
 * @throws KilnError `unsafeArchive` for a hostile entry, `badRequest` for a malformed package.
 */
export async function extractPackage(source: PackageSource, options: UnpackOptions): Promise<UnpackedPackage> {
  if (options.signal?.aborted) throw new KilnError("cancelled", `unpacking ${source.deb} was cancelled`);
  const sha256 = source.sha256 ?? source.pkg?.sha256 ?? (await sha256File(source.deb));
  const dir = packageDir(options.cacheDir, sha256);
  if (!options.noCache) {
    const cached = await readManifest(dir, sha256);
    if (cached) {
      options.charge?.(cached.contentSize);
      return fromManifest(cached, source.deb, dir, true);
    }
  }
  const deb = await openDeb(source.deb);
  const manifest = await extract(deb, sha256, dir, options);
  return fromManifest(manifest, source.deb, dir, false);
}

/** The package an unpacked `.deb` describes, when the caller has no index entry for it. */
export function describeUnpacked(u: UnpackedPackage, index?: BinaryPackage): BinaryPackage {
  try {
    // A local .deb has no index entry: its own sha256 and size stand in for the index's fields
    // (the dpkg status file leaves those index-only fields out).
    let fields = u.control.fields.filter(([k]) => !/^(size|sha256|filename)$/i.test(k));
    // The archive's overrides win over the control file's Priority and Section, as in the status
    // file dpkg writes under apt or debootstrap (apt's control file says "important", the
    // archive and an installed system "required").
    for (const name of ["Priority", "Section"]) {
      const value = index?.paragraph.get(name);
      if (value === undefined) continue;
      fields = fields.some(([k]) => k.toLowerCase() === name.toLowerCase())
        ? fields.map(([k, v]): readonly [string, string] => [k, k.toLowerCase() === name.toLowerCase() ? value : v])
        : [...fields, [name, value]];
    }
    return packageFromParagraph(makeParagraph([...fields, ["Size", String(u.debSize)], ["SHA256", u.sha256]]), { eager: true });
  } catch (err) {
    throw new KilnError("badRequest", `${u.debPath}: ${(err as Error).message}`, { cause: err });
  }
}

/**
 * The package a tree records: described by the `.deb`'s own control file, as dpkg records it
 * (an index may shorten the description), after checking it is the package the index named.
 */
function recordedPackage(source: PackageSource, u: UnpackedPackage): BinaryPackage {
  const pkg = describeUnpacked(u, source.pkg);
  if (source.pkg && (source.pkg.name !== pkg.name || source.pkg.version !== pkg.version || source.pkg.architecture !== pkg.architecture)) {
    throw new KilnError("integrityFailed", `${source.deb} holds ${pkg.name} ${pkg.version} (${pkg.architecture}), but the index describes ${source.pkg.name} ${source.pkg.version} (${source.pkg.architecture})`);
  }
  return pkg;
}

/** Unpacks one package into `rootfs` (see {@link unpackPackages}). */
export async function unpackPackage(rootfs: Rootfs, source: PackageSource, options: UnpackOptions): Promise<InstalledPackage> {
  const u = await extractPackage(source, options);
  return rootfs.install(u, recordedPackage(source, u));
}

/**
 * Unpacks packages into `rootfs` in the order given. Up to `concurrency` packages decompress at
 * once (default 2), but each is recorded into the tree only after every package before it, so
 * overwrites between packages are decided exactly as a sequential install would. On the first
 * failure no further package is recorded, the ones in flight are awaited, and the error is thrown;
 * packages recorded before it stay in the tree.
 */
export async function unpackPackages(
  rootfs: Rootfs,
  sources: readonly PackageSource[],
  options: UnpackOptions & { concurrency?: number; onInstalled?: (pkg: InstalledPackage, unpacked: UnpackedPackage) => void },
): Promise<UnpackedPackage[]> {
  const concurrency = Math.max(1, options.concurrency ?? 2);
  // One xz process per decompression slot for the whole run, instead of one per package.
  const lanes = options.lanes ?? (options.xz === "native" ? undefined : XzLanes.create(concurrency));
  try {
    return await unpackInOrder(rootfs, sources, { ...options, ...(lanes ? { lanes } : {}) }, concurrency);
  } finally {
    if (lanes !== options.lanes) lanes?.close();
  }
}

async function unpackInOrder(
  rootfs: Rootfs,
  sources: readonly PackageSource[],
  options: UnpackOptions & { onInstalled?: (pkg: InstalledPackage, unpacked: UnpackedPackage) => void },
  concurrency: number,
): Promise<UnpackedPackage[]> {
  const results: Array<Promise<UnpackedPackage>> = new Array(sources.length);
  let next = 0;
  let failed = false;
  const slotFreed: Array<() => void> = [];
  let running = 0;

  // Starts extractions while slots are free; each finished one frees its slot.
  const pump = (): void => {
    while (!failed && running < concurrency && next < sources.length) {
      const i = next++;
      running++;
      results[i] = extractPackage(sources[i]!, options).finally(() => {
        running--;
        slotFreed.shift()?.();
        pump();
      });
      results[i]!.catch(() => undefined);
    }
  };
  pump();

  const done: UnpackedPackage[] = [];
  try {
    for (let i = 0; i < sources.length; i++) {
      while (results[i] === undefined) await new Promise<void>((resolve) => slotFreed.push(resolve));
      const u = await results[i]!;
      if (options.signal?.aborted) throw new KilnError("cancelled", "unpacking was cancelled");
      const installed = rootfs.install(u, recordedPackage(sources[i]!, u));
      done.push(u);
      options.onInstalled?.(installed, u);
    }
    return done;
  } catch (err) {
    failed = true;
    await Promise.allSettled(results.filter((r) => r !== undefined));
    throw err;
  }
}
