/**
 * The distributions Kiln offers: the entries of kiln.yaml, each given a stable database id, and
 * their repositories (index fetched and verified on first use, then kept for a while).
 */
import path from "node:path";
import type { BlobStore } from "../blobs/blob-store.js";
import { openRepository, type Repository } from "../debian/repository.js";
import type { DistributionRow, Store } from "../store/types.js";
import { distributionLabel, type DistributionConfig } from "../domain/distributions.js";
import { fail } from "../domain/errors.js";
import type { Distribution } from "../wire/index.js";

export interface CatalogEntry {
  id: number;
  config: DistributionConfig;
  row: DistributionRow;
}

/** How long a fetched repository index is trusted before it is checked again. */
const INDEX_TTL_MS = 30 * 60_000;

export class DistributionCatalog {
  private readonly repos = new Map<number, { at: number; repo: Promise<Repository> }>();

  private constructor(
    private readonly entries: CatalogEntry[],
    private readonly cacheDir: string,
    private readonly debs: BlobStore,
  ) {}

  /** Gives every configured distribution its id (stable across restarts) in the store. */
  static async open(store: Store, configs: DistributionConfig[], options: { dataDir: string; debs: BlobStore }): Promise<DistributionCatalog> {
    const rows = await store.distributions.sync(configs.map((c) => ({ name: c.name, version: c.version, arch: c.arch })));
    const entries = configs.map((config) => {
      const row = rows.find((r) => r.name === config.name && r.version === config.version && r.arch === config.arch);
      if (!row) throw new Error(`distribution ${distributionLabel(config)} was not recorded`);
      return { id: row.id, config, row };
    });
    return new DistributionCatalog(entries, path.join(options.dataDir, "cache", "repos"), options.debs);
  }

  list(): CatalogEntry[] {
    return this.entries.filter((e) => e.row.active);
  }

  get(id: number): CatalogEntry | undefined {
    return this.entries.find((e) => e.id === id);
  }

  /** By UForge name, version and architecture (as a container template may name it). */
  find(name: string, version: string, arch: string | undefined): CatalogEntry | undefined {
    return this.list().find(
      (e) => e.config.name.toLowerCase() === name.toLowerCase() && e.config.version === version && (arch === undefined || e.config.arch === arch),
    );
  }

  /** Reflects an administrator's change of the `active` flag. */
  update(row: DistributionRow): void {
    const e = this.entries.find((x) => x.id === row.id);
    if (e) e.row = row;
  }

  /** The distribution's repository, its index fetched (and verified) on first use. */
  repository(id: number, signal?: AbortSignal): Promise<Repository> {
    const entry = this.get(id);
    if (!entry) throw new Error(`no distribution ${id}`);
    const cached = this.repos.get(id);
    if (cached && Date.now() - cached.at < INDEX_TTL_MS) return cached.repo;
    const repo = openRepository(entry.config, { cacheDir: this.cacheDir, debs: this.debs, ...(signal ? { signal } : {}) });
    this.repos.set(id, { at: Date.now(), repo });
    // A failed fetch must not be cached: the next request tries again.
    repo.catch(() => {
      if (this.repos.get(id)?.repo === repo) this.repos.delete(id);
    });
    return repo;
  }
}

/**
 * The distribution a request names: by `uri` (`distributions/1`), by `dbId`, or by name and
 * version (and arch). Only active distributions can be named.
 */
export function resolveDistribution(catalog: DistributionCatalog, value: Distribution | undefined, what = "containerTemplate.distribution"): CatalogEntry {
  if (!value) fail("invalidField", `${what} is required (its uri, or its arch, name and version)`);
  if (value.uri !== undefined && value.uri !== "") {
    const m = /^\/?(?:api\/)?distributions\/(\d+)\/?$/.exec(value.uri);
    if (!m) fail("unknownDistribution", `"${value.uri}" is not a distribution URI (distributions/<id>)`);
    const d = catalog.get(Number(m[1]));
    if (!d || !d.row.active) fail("unknownDistribution", `no distribution ${m[1]}`);
    return d;
  }
  if (value.dbId !== undefined) {
    const d = catalog.get(value.dbId);
    if (!d || !d.row.active) fail("unknownDistribution", `no distribution ${value.dbId}`);
    return d;
  }
  const { name, version, arch } = value;
  if (!name || !version) fail("invalidField", `${what} needs its uri, or its name and version (and arch)`);
  const d = catalog.find(name, version, arch);
  if (!d) {
    const offered = catalog.list().map((e) => distributionLabel(e.config)).join(", ");
    fail("unknownDistribution", `no distribution ${name} ${version}${arch ? ` ${arch}` : ""}; Kiln offers: ${offered || "none"}`);
  }
  return d;
}
