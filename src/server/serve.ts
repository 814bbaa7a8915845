/**
 * `kiln serve`: opens the store and blob store under the configured data directory, makes sure
 * the administrator exists, builds the app and listens — and shuts down gracefully on SIGINT or
 * SIGTERM (stop accepting, finish what is in flight, close the store).
 *
 * Its role (KILN_ROLE / `--role`) says what the process does: `all` serves the API and runs the
 * jobs (the single process, on SQLite or PostgreSQL); `api` serves the API and leaves the jobs
 * it queues to workers; `worker` runs jobs and answers only `GET /api/status`. The last two share
 * a PostgreSQL database with their peers; the queue between them is the jobs table (leases).
 */
import { chmodSync, mkdirSync } from "node:fs";
import path from "node:path";
import type { FastifyInstance } from "fastify";
import { BlobStore } from "../blobs/blob-store.js";
import { claimSqliteDataDir, openStore } from "../store/store.js";
import type { Store } from "../store/types.js";
import { buildApp, type AppDeps } from "./app.js";
import { loadConfig, type KilnConfig } from "./config.js";
import { DistributionCatalog } from "../library/catalog.js";
import { allEntitlements, loadServedEndpoints } from "./endpoints.js";
import { generatePassword, hashPassword } from "./passwords.js";
import { SecretBox } from "./secrets.js";
import { JobRunner } from "../jobs/runner.js";
import { prefetchGeneratedImages } from "./prefetch.js";
import { sweepUnpackLeftovers } from "../rootfs/unpack.js";
import { isKilnError } from "../domain/errors.js";
import { OciDriver } from "../blobs/oci-driver.js";
import { generationHandler } from "../jobs/generate.js";
import { LeftoverSweeper, type LeftoverSweeperOptions } from "../jobs/leftovers.js";
import { publicationHandler } from "../jobs/publish.js";
import { publicationEgress } from "../registry/egress.js";

export interface Runtime {
  config: KilnConfig;
  deps: AppDeps;
  app: FastifyInstance;
  /** In a process that runs jobs: what retries the blob and tag deletions a registry refused. */
  sweeper?: LeftoverSweeper;
  close(): Promise<void>;
}

/** The administrator `root`, created at first start (design.md). */
export async function ensureAdmin(store: Store, config: KilnConfig, announce: (line: string) => void): Promise<void> {
  if (await store.users.getByLogin("root")) return;
  const password = config.adminPassword ?? generatePassword();
  // Several processes may start at once on one database: the first one's root stands.
  const created = await store.users.create({
    login: "root",
    email: null,
    firstName: null,
    surname: "Administrator",
    passwordHash: await hashPassword(password),
    admin: true,
    active: true,
    entitlements: allEntitlements(loadServedEndpoints()),
  }).then(
    () => true,
    (err: unknown) => {
      if (isKilnError(err, "conflict")) return false;
      throw err;
    },
  );
  if (created && !config.adminPassword) announce(`Created the administrator "root" with the password: ${password}\n(shown once; set KILN_ADMIN_PASSWORD to choose it)`);
}

/** The blob store KILN_BLOB_STORE names (by default `<data>/blobs`). */
export function openBlobStore(config: KilnConfig): BlobStore {
  const b = config.blobStore;
  if (b.kind === "file") return BlobStore.open(b.root);
  // Uploads in flight and the copies builds and downloads read as files stay in this process's data directory.
  return new BlobStore(
    new OciDriver({ registry: b.registry, prefix: b.prefix, localDir: path.join(config.dataDir, "cache", "blob-store"), cacheSize: config.blobCacheSize, ...(b.credentials ? { credentials: b.credentials } : {}) }),
  );
}

/** Opens everything the server needs (also used by tests and benchmarks). */
export async function openRuntime(
  config: KilnConfig,
  options: {
    logger?: AppDeps["logger"];
    announce?: (line: string) => void;
    startJobs?: boolean;
    /** The leftover sweeper's pace (tests drive it themselves with a long interval and no waits). */
    sweeper?: Pick<LeftoverSweeperOptions, "intervalMs" | "retry" | "claimMs">;
  } = {},
): Promise<Runtime> {
  // Uploads, images, caches and (with SQLite) the database: nobody else on the machine reads them.
  mkdirSync(config.dataDir, { recursive: true, mode: 0o700 });
  chmodSync(config.dataDir, 0o700);
  const store = await openStore({ dataDir: config.dataDir, ...(config.databaseUrl ? { databaseUrl: config.databaseUrl } : {}) });
  try {
    await ensureAdmin(store, config, options.announce ?? ((l) => process.stdout.write(`${l}\n`)));
    const blobs = openBlobStore(config);
    const debs = BlobStore.open(path.join(config.dataDir, "cache", "debs"));
    // Before any upload or job of this process can start: what is left is an ended process's.
    const swept = (await blobs.sweepTemp()) + (await debs.sweepTemp()) + (await sweepUnpackLeftovers(path.join(config.dataDir, "cache")));
    const catalog = await DistributionCatalog.open(store, config.distributions, { dataDir: config.dataDir, debs });
    const secrets = SecretBox.fromConfig(config.secretKey, config.dataDir);
    // The runner logs through the app's logger, which exists once the app is built.
    let app: FastifyInstance | undefined;
    // An api process keeps a runner without handlers: it queues and cancels through the store,
    // and the workers hear of both (store.listen).
    const runsJobs = config.role !== "api";
    const log = { info: (o: object, m: string) => app?.log.info(o, m), warn: (o: object, m: string) => app?.log.warn(o, m), error: (o: object, m: string) => app?.log.error(o, m) };
    const jobs = new JobRunner({
      log,
      store,
      dataDir: config.dataDir,
      leaseMs: config.jobLeaseMs,
      // On SQLite this process is the only one (serve() holds the data directory's claim).
      exclusive: !config.databaseUrl,
      handlers: runsJobs
        ? {
            generate: generationHandler({ store, blobs, debs, catalog, dataDir: config.dataDir, maxImageSize: config.maxImageSize, log }),
            publish: publicationHandler({ store, blobs, secrets, egress: publicationEgress(config.publishAllow) }),
          }
        : {},
      // Pushes wait on the network more than on the CPU: a few may run beside the builds.
      concurrency: { generate: config.buildConcurrency, publish: 3 },
    });
    const deps: AppDeps = { config, store, blobs, secrets, catalog, jobs, ...(options.logger === undefined ? {} : { logger: options.logger }) };
    app = await buildApp(deps);
    if (swept > 0) app.log.info({ removed: swept }, "removed the temporary files of uploads, downloads and unpackings an earlier process left");
    // Where jobs run, so does the retry of what a registry would not delete (api processes only record it).
    const sweeper = runsJobs ? new LeftoverSweeper({ store, blobs, log, ...options.sweeper }) : undefined;
    if (options.startJobs !== false && runsJobs) {
      await jobs.start();
      sweeper?.start();
    }
    // Processes that serve downloads fetch what other processes generate (on PostgreSQL: SQLite is one process).
    const prefetch = config.role !== "worker" && config.databaseUrl && config.prefetchImages ? await prefetchGeneratedImages(store, blobs, app.log) : undefined;
    const built = app;
    return {
      config,
      deps,
      app: built,
      ...(sweeper ? { sweeper } : {}),
      close: async () => {
        await prefetch?.close();
        await built.close();
        await jobs.stop();
        await sweeper?.stop();
        await store.close();
      },
    };
  } catch (err) {
    await store.close();
    throw err;
  }
}

export async function serve(env: NodeJS.ProcessEnv = process.env, overrides: { role?: string } = {}): Promise<void> {
  const config = loadConfig(env, overrides);
  // SQLite is one process's database: a second server on the same file is refused (the claim
  // goes with this process, however it ends). The shutdown below refers to the claim, which keeps
  // it for the process's life: a claim the garbage collector took would close its database, and
  // with it the lock, letting a second server in.
  const claim = config.databaseUrl ? undefined : claimSqliteDataDir(config.dataDir);
  let rt: Runtime;
  try {
    rt = await openRuntime(config);
  } catch (err) {
    claim?.release();
    throw err;
  }
  let closing = false;
  const shutdown = (signal: string): void => {
    if (closing) return;
    closing = true;
    rt.app.log.info({ signal }, "shutting down");
    const force = setTimeout(() => {
      rt.app.log.error("shutdown took too long; exiting");
      process.exit(1);
    }, 20_000);
    force.unref();
    rt.close().then(
      () => {
        claim?.release();
        process.exit(0);
      },
      (err) => {
        rt.app.log.error({ err }, "error during shutdown");
        process.exit(1);
      },
    );
  };
  process.once("SIGINT", () => shutdown("SIGINT"));
  process.once("SIGTERM", () => shutdown("SIGTERM"));
  await rt.app.listen({ host: config.host, port: config.port });
}
