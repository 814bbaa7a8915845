/**
 * A software bundle as image content: its `.deb` packages (installed with the distribution's
 * packages) and everything else as one layer on top — files copied, archives unpacked, folders
 * with their children, owners, rights and symlinks applied.
 *
 * Where an artifact lands: its `installLocation` (a directory), else the bundle's
 * `defaultInstallLocation`, else `/opt/<bundle name>`; a nested artifact without its own location
 * lands in its folder. A directory the image reaches through a symlink lands at the link's
 * target: `/bin` is `/usr/bin` on a merged-/usr system, and replacing the link by a directory
 * would hide `/bin/sh` and everything beside it. Archive entries that would leave their install
 * directory (`..`, absolute names, links pointing outside, hard links to unknown paths) fail the
 * build with a message naming the archive and the entry; their setuid and setgid bits are
 * dropped unless the artifact's `rights` ask for them.
 */
import { createHash } from "node:crypto";
import { createWriteStream } from "node:fs";
import path from "node:path";
import { pipeline } from "node:stream/promises";
import { Readable, Transform, type TransformCallback } from "node:stream";
import { createGunzip } from "node:zlib";
import { createRequire } from "node:module";
import type tarStream from "tar-stream";
import type yauzlType from "yauzl";
import type { BlobStore, Digest } from "../blobs/blob-store.js";
import { isKilnError, KilnError, storageError } from "../domain/errors.js";
import { lazy } from "../domain/lazy.js";
import { createDecoder, type DebCompression } from "../debian/deb-decompress.js";
import { ContentFile } from "../rootfs/content.js";
import { UnsafePathError, normaliseArchivePath, parentPath } from "../rootfs/paths.js";
import type { ContentRef, FsEntry, RootfsView } from "../rootfs/types.js";
import type { UnpackedPackage } from "../rootfs/unpack.js";
import type { ArtifactRow, BundleRow } from "../store/types.js";
import type { ExtraLayer } from "./types.js";
import { parseArtifactParams } from "../domain/artifacts.js";

// Loaded for the first archive read: a build without artifacts needs neither.
const require = createRequire(import.meta.url);
const tar = lazy(() => require("tar-stream") as typeof tarStream);
const yauzl = lazy(() => require("yauzl") as typeof yauzlType);

export interface BundlePlan {
  /** `.deb` artifacts to install with the distribution's packages (blob digests). */
  debs: Array<{ name: string; digest: Digest }>;
  /** The layer with every other artifact, or undefined when there is none. */
  layer: ExtraLayer | undefined;
  /**
   * Counts the bundle's unpacked content against KILN_MAX_IMAGE_SIZE: its files and archives
   * (the layer) and its `.deb` packages' contents (charged by the builder as they unpack).
   */
  budget: ContentBudget;
}

export interface BundlePlanOptions {
  bundle: BundleRow;
  artifacts: ArtifactRow[];
  blobs: BlobStore;
  /** Scratch space for unpacked archive contents (the job's temporary directory). */
  workDir: string;
  /** OpenShift: group 0 owns the install locations and may write them (arbitrary user ids). */
  groupWritable: boolean;
  /**
   * KILN_MAX_IMAGE_SIZE: the most the bundle's files may add up to, unpacked. Unpacking stops as
   * soon as the count passes it — a small archive of zeros must not fill the disk first.
   */
  maxContentSize?: number;
}

/** `21474836480` → `20 GiB`, for messages. */
function formatSize(bytes: number): string {
  for (const [unit, size] of [["TiB", 1024 ** 4], ["GiB", 1024 ** 3], ["MiB", 1024 ** 2], ["KiB", 1024]] as const) {
    if (bytes >= size && bytes % (size / 1024) === 0) return `${Number((bytes / size).toFixed(2))} ${unit}`;
  }
  return `${bytes} bytes`;
}

/** Counts what the bundle adds to the image against KILN_MAX_IMAGE_SIZE. */
export class ContentBudget {
  private used = 0;
  constructor(private readonly limit: number | undefined) {}
  /** Starts the count again: each image of a multi-architecture generation has the whole limit. */
  reset(): void {
    this.used = 0;
  }
  /** Adds `bytes` of `what`; throws once the total passes the limit. */
  charge(bytes: number, what: string): void {
    this.used += bytes;
    if (this.limit !== undefined && this.used > this.limit) {
      throw new KilnError(
        "tooLarge",
        `artifact ${what}: unpacking stopped, the image's content passes KILN_MAX_IMAGE_SIZE (${formatSize(this.limit)}); a decompression bomb, or raise the limit`,
      );
    }
  }
}

type ArchiveKind = "tar" | "tar.gz" | "tar.bz2" | "tar.xz" | "tar.zst" | "zip" | "gz";

/** The archive type a file name announces, for `extract=true`. */
export function archiveKind(name: string): ArchiveKind | undefined {
  const n = name.toLowerCase();
  if (n.endsWith(".tar")) return "tar";
  if (n.endsWith(".tar.gz") || n.endsWith(".tgz")) return "tar.gz";
  if (n.endsWith(".tar.bz2") || n.endsWith(".tbz2") || n.endsWith(".tbz")) return "tar.bz2";
  if (n.endsWith(".tar.xz") || n.endsWith(".txz")) return "tar.xz";
  if (n.endsWith(".tar.zst") || n.endsWith(".tzst")) return "tar.zst";
  if (n.endsWith(".zip")) return "zip";
  if (n.endsWith(".gz")) return "gz";
  return undefined;
}

function isDeb(a: ArtifactRow): boolean {
  return a.kind === "file" && (a.tag === "ospkg" || (a.origName ?? a.name).toLowerCase().endsWith(".deb"));
}

/** Splits a bundle into packages to install and the layer of everything else. */
export function planBundle(options: BundlePlanOptions): BundlePlan {
  const { bundle, artifacts } = options;
  const missing = artifacts.filter((a) => a.kind === "file" && !a.blobDigest);
  if (missing.length > 0) {
    throw new KilnError("buildFailed", `artifact ${missing[0]!.name} of bundle ${bundle.name} has no uploaded file: upload it before generating`);
  }
  const debs = artifacts.filter((a) => a.parentId === null && isDeb(a) && a.install).map((a) => ({ name: a.origName ?? a.name, digest: a.blobDigest as Digest }));
  const debIds = new Set(artifacts.filter((a) => a.parentId === null && isDeb(a) && a.install).map((a) => a.id));
  const rest = artifacts.filter((a) => !debIds.has(a.id));
  const budget = new ContentBudget(options.maxContentSize);
  if (rest.length === 0) return { debs, layer: undefined, budget };
  const keyMaterial = JSON.stringify({
    // 2: locations through merged-/usr links land in /usr; archives lose setuid/setgid bits.
    v: 2,
    name: bundle.name,
    defaultInstallLocation: bundle.defaultInstallLocation,
    groupWritable: options.groupWritable,
    artifacts: rest.map((a) => [a.id, a.parentId, a.position, a.kind, a.tag, a.name, a.origName, a.installLocation, a.extract, a.params, a.blobDigest]),
  });
  return {
    debs,
    layer: {
      createdBy: `bundle ${bundle.name}${bundle.version ? ` ${bundle.version}` : ""}`,
      cacheKey: createHash("sha256").update(keyMaterial).digest("hex"),
      entries: (view) => new BundleLayerBuilder(options, view, budget).build(rest),
    },
    budget,
  };
}

/**
 * A package from a bundle (or `kiln build --deb`) may not put device nodes in an image — a
 * world-writable copy of `/dev/mem` is a way into any host that runs it — any more than a
 * bundle's archives may. Distribution packages are trusted through their signed index.
 */
export function refuseDeviceNodes(deb: string, unpacked: Pick<UnpackedPackage, "entries">): void {
  const device = unpacked.entries.find((e) => e.type === "char" || e.type === "block");
  if (device) {
    const kind = device.type === "char" ? "character" : "block";
    throw new KilnError("unsafeArchive", `${deb}: entry /${device.path} is a ${kind} device node; packages from outside the distribution may not create device nodes`);
  }
}

interface Ids {
  users: Map<string, number>;
  groups: Map<string, number>;
}

function readIds(view: RootfsView, file: string): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  const entry = view.stat(file);
  if (!entry || entry.type !== "file") return Promise.resolve(out);
  return view.readFile(file).then((buf) => {
    for (const line of buf.toString("utf8").split("\n")) {
      const f = line.split(":");
      if (f.length >= 3 && f[0] && /^\d+$/.test(f[2]!)) out.set(f[0], Number(f[2]));
    }
    return out;
  });
}

/**
 * Copies a stream into the content file while counting, so each file is a range of it. A write
 * that fails (a full disk) fails the copy at once with its cause: the file never drains again.
 */
class Appender {
  private offset = 0;
  private readonly out: ReturnType<typeof createWriteStream>;
  private failed: Error | undefined;
  readonly file: ContentFile;
  constructor(
    readonly filePath: string,
    private readonly budget: ContentBudget,
  ) {
    this.out = createWriteStream(filePath);
    this.out.on("error", (err) => (this.failed ??= storageError(err)));
    this.file = new ContentFile(filePath);
  }
  async append(source: Readable, what: string): Promise<ContentRef> {
    const start = this.offset;
    let n = 0;
    const budget = this.budget;
    const counter = new Transform({
      transform(chunk: Buffer, _enc, cb: TransformCallback) {
        n += chunk.length;
        try {
          budget.charge(chunk.length, what);
        } catch (err) {
          return cb(err as Error);
        }
        cb(null, chunk);
      },
    });
    await pipeline(source, counter, async (src: AsyncIterable<Buffer>) => {
      for await (const chunk of src) {
        if (this.failed) throw this.failed;
        if (!this.out.write(chunk)) await this.drained();
      }
    }).catch((err: unknown) => {
      if (err === this.failed || isKilnError(err)) throw err;
      throw new KilnError("buildFailed", `cannot read ${what}: ${(err as Error).message}`, { cause: err });
    });
    if (this.failed) throw this.failed;
    this.offset += n;
    return this.file.range(start, n);
  }
  private drained(): Promise<void> {
    return new Promise((resolve, reject) => {
      const onDrain = (): void => {
        this.out.off("error", onError);
        resolve();
      };
      const onError = (): void => {
        this.out.off("drain", onDrain);
        reject(this.failed);
      };
      this.out.once("drain", onDrain);
      this.out.once("error", onError);
    });
  }
  /** Closes the file (its descriptor too after a failure: an open deleted file keeps its space). */
  close(): Promise<void> {
    if (this.failed || this.out.destroyed) {
      const failed = this.failed;
      return new Promise((resolve, reject) => {
        const done = (): void => (failed ? reject(failed) : resolve());
        if (this.out.closed) return done();
        this.out.once("close", done);
        this.out.destroy();
      });
    }
    return new Promise((resolve, reject) => this.out.end((err?: Error | null) => (err ? reject(this.failed ?? storageError(err)) : resolve())));
  }
}

class BundleLayerBuilder {
  private readonly entries = new Map<string, FsEntry>();
  private ids: Ids | undefined;
  private appender: Appender | undefined;
  constructor(
    private readonly options: BundlePlanOptions,
    private readonly view: RootfsView,
    private readonly budget: ContentBudget,
  ) {}

  async build(artifacts: ArtifactRow[]): Promise<FsEntry[]> {
    this.ids = { users: await readIds(this.view, "etc/passwd"), groups: await readIds(this.view, "etc/group") };
    const byParent = new Map<number | null, ArtifactRow[]>();
    for (const a of artifacts) {
      const list = byParent.get(a.parentId) ?? [];
      list.push(a);
      byParent.set(a.parentId, list);
    }
    const bundle = this.options.bundle;
    const defaultDir = bundle.defaultInstallLocation ?? `/opt/${safeName(bundle.name)}`;
    try {
      const visit = async (parent: number | null, dir: string): Promise<void> => {
        for (const a of (byParent.get(parent) ?? []).sort((x, y) => x.position - y.position || x.id - y.id)) {
          const base = a.installLocation ?? dir;
          await this.add(a, rel(base), async (created) => visit(a.id, `/${created}`));
        }
      };
      await visit(null, defaultDir);
    } finally {
      await this.appender?.close();
    }
    if (this.options.groupWritable) {
      // OpenShift runs images as an arbitrary user id in group 0: the group gets the owner's rights.
      for (const e of this.entries.values()) {
        if (e.type === "symlink") continue;
        e.gid = 0;
        e.mode = (e.mode & ~0o070) | ((e.mode & 0o700) >> 3);
      }
    }
    return [...this.entries.values()];
  }

  private content(): Appender {
    this.appender ??= new Appender(path.join(this.options.workDir, `bundle-content-${process.pid}-${Date.now()}`), this.budget);
    return this.appender;
  }

  /** Adds one artifact under `dir`; `children` adds a folder's children inside it. */
  private async add(a: ArtifactRow, dir: string, children: (created: string) => Promise<void>): Promise<void> {
    const { params } = parseArtifactParams(a.params ?? undefined, `artifact ${a.name}: params`);
    const owner = params.ownerGroup ? this.owner(params.ownerGroup, a.name) : undefined;
    const before = new Set(this.entries.keys());
    const rights = params.rights ? parseInt(params.rights, 8) : undefined;
    // setuid/setgid bits an archive's entries may keep: only those the artifact's rights name.
    const special = (rights ?? 0) & 0o6000;
    dir = this.place(dir, "dir", a.name);
    let target: string;
    if (a.kind === "folder") {
      target = this.place(join(dir, a.name), "dir", a.name);
      this.dir(target, rights ?? 0o755, true);
      await children(target);
    } else {
      const fileName = a.origName ?? a.name;
      const kind = a.extract ? archiveKind(fileName) : undefined;
      const digest = a.blobDigest as Digest;
      if (kind === undefined) {
        target = this.place(join(dir, fileName), "file", a.name);
        this.parents(target);
        const info = await this.options.blobs.stat(digest);
        if (!info) throw new KilnError("buildFailed", `the file of artifact ${a.name} is missing from the blob store`);
        this.budget.charge(info.size, fileName);
        this.entries.set(target, {
          path: target,
          type: "file",
          mode: params.rights ? parseInt(params.rights, 8) : 0o644,
          uid: 0,
          gid: 0,
          content: { size: info.size, open: () => this.options.blobs.open(digest) },
        });
      } else {
        target = kind === "gz" ? this.place(join(dir, fileName.replace(/\.gz$/i, "")), "file", a.name) : dir;
        if (kind === "gz") {
          this.parents(target);
          const ref = await this.content().append(this.options.blobs.open(digest).pipe(createGunzip()), fileName);
          this.entries.set(target, { path: target, type: "file", mode: rights ?? 0o644, uid: 0, gid: 0, content: ref });
        } else {
          this.dir(target, rights ?? 0o755, params.rights !== undefined);
          if (kind === "zip") await this.extractZip(fileName, digest, target, special);
          else await this.extractTar(fileName, kind, digest, target, special);
        }
      }
    }
    if (owner) {
      for (const [p, e] of this.entries) if (!before.has(p) || p === target) Object.assign(e, owner);
    }
    if (params.symlink) {
      const link = this.place(rel(params.symlink), "file", a.name);
      if (link === target) throw new KilnError("buildFailed", `artifact ${a.name}: its symlink ${params.symlink} is the artifact itself`);
      this.parents(link);
      this.entries.set(link, { path: link, type: "symlink", mode: 0o777, uid: 0, gid: 0, linkname: `/${target}` });
    }
  }

  private owner(spec: string, artifact: string): { uid: number; gid: number } {
    const [user, group] = spec.split(":") as [string, string | undefined];
    const uid = /^\d+$/.test(user) ? Number(user) : this.ids!.users.get(user);
    if (uid === undefined) throw new KilnError("buildFailed", `artifact ${artifact}: user "${user}" does not exist in the image (ownerGroup ${spec})`);
    let gid: number | undefined;
    if (group === undefined) gid = this.ids!.groups.get(user) ?? 0;
    else gid = /^\d+$/.test(group) ? Number(group) : this.ids!.groups.get(group);
    if (gid === undefined) throw new KilnError("buildFailed", `artifact ${artifact}: group "${group}" does not exist in the image (ownerGroup ${spec})`);
    return { uid, gid };
  }

  /** A directory of the layer; parents keep the base image's metadata where they exist there. */
  private dir(p: string, mode: number, force: boolean): void {
    if (p === "") return;
    this.parents(p);
    const existing = this.entries.get(p);
    if (existing && existing.type === "dir" && !force) return;
    const base = this.view.lstat(p);
    if (base && base.type !== "dir") {
      // A link to a directory was followed by place(); one that is left leads nowhere usable.
      const what = base.type === "symlink" ? `a symbolic link (to ${base.linkname ?? "?"}) that does not lead to a directory` : `a ${base.type}`;
      throw new KilnError("buildFailed", `the bundle needs a directory at /${p}, but the image has ${what} there`);
    }
    this.entries.set(p, force || !base || base.type !== "dir" ? { path: p, type: "dir", mode, uid: 0, gid: 0 } : { ...base, path: p });
  }

  /**
   * Where `p` really is in the image. A component that is, in the image below (not in this
   * layer), a symbolic link to a directory is replaced by the directory it leads to — for the
   * last component too when `p` is to be a directory (`/bin` → `usr/bin`). A file, link or
   * archive entry may not take the place of such a link: that would cut off the directory.
   */
  private place(p: string, kind: "dir" | "file", what: string): string {
    const parts = p.split("/").filter(Boolean);
    let at = "";
    for (let i = 0; i < parts.length; i++) {
      const next = join(at, parts[i]!);
      const base = this.entries.has(next) ? undefined : this.view.lstat(next);
      if (base?.type === "symlink" && this.view.stat(next)?.type === "dir") {
        if (i < parts.length - 1 || kind === "dir") {
          at = this.view.realpath(next)!;
          continue;
        }
        throw new KilnError("buildFailed", `${what} would replace /${next}, the image's link to the directory ${base.linkname ?? "?"}: install it elsewhere, or into /${this.view.realpath(next)!}`);
      }
      at = next;
    }
    return at;
  }

  private parents(p: string): void {
    const parent = parentPath(p);
    if (parent !== "" && !this.entries.has(parent)) this.dir(parent, 0o755, false);
  }

  /** Checks an archive entry and returns its path inside the layer. */
  private entryPath(archive: string, root: string, name: string, kind: "dir" | "file"): string {
    let relName: string;
    try {
      relName = normaliseArchivePath(name);
    } catch (err) {
      if (err instanceof UnsafePathError) throw new KilnError("unsafeArchive", `archive ${archive}: entry ${name} ${err.message}; refusing to unpack it`);
      throw err;
    }
    return relName === "" ? root : this.place(join(root, relName), kind, `archive ${archive}: entry ${name}`);
  }

  /** A symlink target must stay inside the install directory once resolved from where it sits. */
  private checkLink(archive: string, root: string, at: string, name: string, target: string): void {
    if (target.startsWith("/")) throw new KilnError("unsafeArchive", `archive ${archive}: symlink ${name} points to the absolute path ${target}; refusing to unpack it`);
    const parts = parentPath(at).split("/").filter(Boolean);
    for (const part of target.split("/")) {
      if (part === "" || part === ".") continue;
      if (part === "..") parts.pop();
      else parts.push(part);
    }
    const resolved = parts.join("/");
    if (!(resolved === root || resolved.startsWith(`${root}/`))) {
      throw new KilnError("unsafeArchive", `archive ${archive}: symlink ${name} -> ${target} points outside its install directory; refusing to unpack it`);
    }
  }

  /** Refuses writing through a symlink the same archive created. */
  private checkParents(archive: string, root: string, at: string, name: string): void {
    for (let p = parentPath(at); p !== "" && p !== root; p = parentPath(p)) {
      if (this.entries.get(p)?.type === "symlink") throw new KilnError("unsafeArchive", `archive ${archive}: entry ${name} would be written through the symlink /${p}; refusing to unpack it`);
    }
  }

  private async extractTar(archive: string, kind: Exclude<ArchiveKind, "zip" | "gz">, digest: Digest, root: string, special: number): Promise<void> {
    const compression: DebCompression = kind === "tar" ? "none" : kind === "tar.gz" ? "gzip" : kind === "tar.bz2" ? "bzip2" : kind === "tar.xz" ? "xz" : "zstd";
    const decoder = createDecoder(compression).stream;
    const extract = tar().extract();
    const done = pipeline(this.options.blobs.open(digest), decoder, extract).catch((err: unknown) => {
      throw err instanceof KilnError ? err : new KilnError("buildFailed", `cannot unpack archive ${archive}: ${(err as Error).message}`, { cause: err });
    });
    const seen = new Set<string>();
    try {
      for await (const entry of extract) {
        const h = entry.header;
        const at = this.entryPath(archive, root, h.name, h.type === "directory" ? "dir" : "file");
        this.checkParents(archive, root, at, h.name);
        const mode = keepSpecial((h.mode ?? 0o644) & 0o7777, special);
        const owner = { uid: 0, gid: 0 };
        switch (h.type) {
          case "directory":
            this.dir(at, mode, true);
            entry.resume();
            break;
          case "file":
          case "contiguous-file": {
            this.parents(at);
            const ref = await this.content().append(entry as unknown as Readable, `${archive}: ${h.name}`);
            this.entries.set(at, { path: at, type: "file", mode, ...owner, content: ref });
            break;
          }
          case "symlink":
            this.checkLink(archive, root, at, h.name, h.linkname ?? "");
            this.parents(at);
            this.entries.set(at, { path: at, type: "symlink", mode: 0o777, ...owner, linkname: h.linkname ?? "" });
            entry.resume();
            break;
          case "link": {
            const linkTarget = this.entryPath(archive, root, h.linkname ?? "", "file");
            if (!seen.has(linkTarget) || this.entries.get(linkTarget)?.type !== "file") {
              throw new KilnError("unsafeArchive", `archive ${archive}: hard link ${h.name} points to ${h.linkname}, which is not a file earlier in the archive; refusing to unpack it`);
            }
            this.parents(at);
            this.entries.set(at, { path: at, type: "hardlink", mode, ...owner, linkname: linkTarget });
            entry.resume();
            break;
          }
          default:
            // Devices and fifos have no place in an application bundle.
            entry.resume();
            throw new KilnError("unsafeArchive", `archive ${archive}: entry ${h.name} is a ${h.type}; bundles may hold files, directories and links only`);
        }
        seen.add(at);
      }
      await done;
    } catch (err) {
      extract.destroy();
      await done.catch(() => undefined);
      throw err;
    }
  }

  private async extractZip(archive: string, digest: Digest, root: string, special: number): Promise<void> {
    // The zip is read by offsets from its file: kept (pinned in a registry store's cache) until closed.
    const copy = await this.options.blobs.localCopy(digest);
    const file = copy.path;
    const zip = await new Promise<yauzlType.ZipFile>((resolve, reject) =>
      // Names are decoded and checked here (decodeStrings: false): yauzl's own check fails the
      // whole archive with "invalid relative path", where Kiln names the entry like for tar.
      yauzl().open(file, { lazyEntries: true, autoClose: false, validateEntrySizes: true, decodeStrings: false }, (err, z) => (err ? reject(err) : resolve(z!))),
    ).catch((err: unknown) => {
      copy.release();
      throw new KilnError("buildFailed", `cannot read zip archive ${archive}: ${(err as Error).message}`, { cause: err });
    });
    try {
      for (;;) {
        const entry = await new Promise<yauzlType.Entry | undefined>((resolve, reject) => {
          zip.once("entry", resolve);
          zip.once("end", () => resolve(undefined));
          zip.once("error", (err: Error) => reject(new KilnError("buildFailed", `cannot read zip archive ${archive}: ${err.message}`, { cause: err })));
          zip.readEntry();
        });
        zip.removeAllListeners("entry").removeAllListeners("end").removeAllListeners("error");
        if (!entry) break;
        const name = yauzl().getFileNameLowLevel(entry.generalPurposeBitFlag, entry.fileNameRaw, entry.extraFields, false);
        if (name.includes("\\")) throw new KilnError("unsafeArchive", `archive ${archive}: entry ${name} has a backslash in its name; refusing to unpack it`);
        const unixMode = (entry.externalFileAttributes >>> 16) & 0xffff;
        const fileType = unixMode & 0o170000;
        const perm = keepSpecial(unixMode & 0o7777, special);
        const at = this.entryPath(archive, root, name, name.endsWith("/") || fileType === 0o040000 ? "dir" : "file");
        this.checkParents(archive, root, at, name);
        if (name.endsWith("/") || fileType === 0o040000) {
          this.dir(at, perm || 0o755, true);
          continue;
        }
        const stream = await new Promise<Readable>((resolve, reject) =>
          zip.openReadStream(entry, (err, s) => (err ? reject(new KilnError("buildFailed", `cannot read zip archive ${archive}: entry ${name}: ${err.message}`, { cause: err })) : resolve(s!))),
        );
        if (fileType === 0o120000) {
          const chunks: Buffer[] = [];
          for await (const c of stream) chunks.push(c as Buffer);
          const linkname = Buffer.concat(chunks).toString("utf8");
          this.checkLink(archive, root, at, name, linkname);
          this.parents(at);
          this.entries.set(at, { path: at, type: "symlink", mode: 0o777, uid: 0, gid: 0, linkname });
          continue;
        }
        this.parents(at);
        const ref = await this.content().append(stream, `${archive}: ${name}`);
        this.entries.set(at, { path: at, type: "file", mode: perm || 0o644, uid: 0, gid: 0, content: ref });
      }
    } finally {
      zip.close();
      copy.release();
    }
  }
}

/** `mode` without the setuid/setgid bits that `special` does not hold. */
function keepSpecial(mode: number, special: number): number {
  return mode & ~(0o6000 & ~special);
}

/** `/opt/hello` → `opt/hello` (locations were checked when they were stored). */
function rel(p: string): string {
  return p.split("/").filter((s) => s !== "" && s !== ".").join("/");
}

function join(dir: string, name: string): string {
  return dir === "" ? name : `${dir}/${name}`;
}

function safeName(name: string): string {
  return name.replace(/[^A-Za-z0-9._+-]/g, "_") || "bundle";
}

// Readable is re-exported for tests that build archives in memory.
export { Readable };
