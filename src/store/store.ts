/**
 * Opens the metadata store: SQLite in the data directory by default, PostgreSQL when
 * KILN_DATABASE_URL names one. This file holds the one dialect switch; above it, the same Kysely
 * queries and migrations run on both.
 */
import { chmodSync, closeSync, mkdirSync, openSync, rmSync, statSync, writeFileSync } from "node:fs";
import path from "node:path";
import Database from "better-sqlite3";
import { Kysely, PostgresDialect, SqliteDialect, sql, type SqliteDatabase } from "kysely";
import type { Dialect } from "kysely";
import pg from "pg";
import { KilnError, isKilnError } from "../domain/errors.js";
import { translateDbError, translatingErrors } from "./codec.js";
import { migrateToLatest } from "./migrations/index.js";
import type { StoreDialect } from "./migrations/index.js";
import { apiKeyRepo } from "./repos/api-keys.js";
import { artifactRepo } from "./repos/artifacts.js";
import { blobLockRepo } from "./repos/blob-locks.js";
import { leftoverRepo } from "./repos/leftovers.js";
import { bundleRepo } from "./repos/bundles.js";
import { bundleExportRepo, bundleFileRepo, bundleImportRepo } from "./repos/bundle-transfers.js";
import { cloudAccountRepo } from "./repos/cloud-accounts.js";
import type { RepoContext } from "./repos/context.js";
import { distributionRepo } from "./repos/distributions.js";
import { downloadKeyRepo } from "./repos/download-keys.js";
import { imageRepo, publicationRepo } from "./repos/images.js";
import { JOB_CHANNEL, jobRepo } from "./repos/jobs.js";
import { sessionRepo } from "./repos/sessions.js";
import { templateRepo } from "./repos/templates.js";
import { userRepo } from "./repos/users.js";
import type { KilnDatabase } from "./schema.js";
import type { Store, StoreRepositories } from "./types.js";

export { SORTABLE_FIELDS } from "./list.js";
export type { ListFamily } from "./list.js";

/** The SQLite file's name inside the data directory. */
export const SQLITE_FILE = "kiln.db";

/** How long a SQLite writer waits for another's lock before giving up with "busy". */
const SQLITE_BUSY_TIMEOUT_MS = 5000;

export interface StoreOptions {
  /** KILN_DATA_DIR: the SQLite database lives here (created if missing). */
  dataDir: string;
  /** KILN_DATABASE_URL: a `postgres://` or `postgresql://` URL puts the metadata in PostgreSQL. */
  databaseUrl?: string;
  /** The clock that stamps `created` / `lastModified` (tests pass their own). */
  now?: () => Date;
}

interface Connection {
  dialect: StoreDialect;
  kysely: Dialect;
  /** The SQLite file, for {@link migrateOnce}; undefined for PostgreSQL. */
  file?: string;
  reserve?: Reserve;
}

/**
 * Migrations in progress in this process, by SQLite file. Across processes, SQLite migrations
 * wait on each other through the database lock; within one process that wait would block the
 * event loop (better-sqlite3 is synchronous) while the holder needs it to finish, so stores
 * opened together in one process take turns here first.
 */
const sqliteMigrations = new Map<string, Promise<unknown>>();

async function migrateOnce(db: Kysely<KilnDatabase>, connection: Connection): Promise<void> {
  const run = (): Promise<unknown> => migrateToLatest(db as unknown as Kysely<unknown>, connection.dialect);
  if (connection.file === undefined) {
    await run();
    return;
  }
  const file = connection.file;
  const previous = sqliteMigrations.get(file) ?? Promise.resolve();
  const mine = previous.catch(() => undefined).then(run);
  sqliteMigrations.set(file, mine);
  try {
    await mine;
  } finally {
    if (sqliteMigrations.get(file) === mine) sqliteMigrations.delete(file);
  }
}

/**
 * Kysely prepares every query anew; preparing costs SQLite more than running a small query does.
 * Kysely's SQL text is stable per query shape (values are parameters), so statements are kept by
 * text. A statement still busy with an iterator is not shared: a fresh one is prepared instead.
 */
function withStatementCache(db: Database.Database): SqliteDatabase {
  const cache = new Map<string, Database.Statement>();
  return {
    close: () => db.close(),
    prepare(text: string) {
      // SQLite rolls a transaction back by itself on some failures (SQLITE_FULL: a full disk);
      // Kysely's own rollback would then fail ("no transaction is active") and replace the
      // error that says what happened. Nothing is left to roll back: do nothing.
      if (text === "rollback" && !db.inTransaction) return db.prepare("select 1");
      const cached = cache.get(text);
      if (cached && !cached.busy) return cached;
      const stmt = db.prepare(text);
      if (!cached && cache.size < 1000) cache.set(text, stmt);
      return stmt;
    },
  };
}

/**
 * Switching a fresh database to WAL takes an exclusive lock, and SQLite answers SQLITE_BUSY at
 * once (without its busy handler) when another process is opening the same file: retry for up
 * to the busy timeout. better-sqlite3 is synchronous, so the wait is too (Atomics.wait).
 */
function whileBusy<T>(fn: () => T): T {
  const deadline = Date.now() + SQLITE_BUSY_TIMEOUT_MS;
  for (let delay = 5; ; delay = Math.min(delay * 2, 100)) {
    try {
      return fn();
    } catch (err) {
      if ((err as { code?: string }).code !== "SQLITE_BUSY" || Date.now() > deadline) throw err;
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, delay);
    }
  }
}

/**
 * The database holds password hashes and encrypted secrets: only Kiln's user may read it. The
 * file is made 0600 before SQLite opens it (SQLite gives its `-wal` and `-shm` files the
 * database's mode), and a database made by an older Kiln with the umask's mode is closed down.
 */
function ownerOnly(file: string): void {
  closeSync(openSync(file, "a", 0o600));
  for (const f of [file, `${file}-wal`, `${file}-shm`]) {
    try {
      chmodSync(f, 0o600);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
    }
  }
}

/**
 * Claims a SQLite data directory for one server process: SQLite is one process's database (its
 * job queue has no other worker to hand jobs to, and the process resumes at start the jobs left
 * running). The claim is an exclusive transaction held open on a lock file beside the database —
 * an OS lock, so it goes with the process however the process ends. A second server is refused.
 */
export function claimSqliteDataDir(dataDir: string): { release(): void } {
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const file = path.resolve(dataDir, `${SQLITE_FILE}.lock`);
  ownerOnly(file);
  const db = new Database(file, { timeout: 0 });
  try {
    db.exec("begin exclusive");
  } catch (err) {
    db.close();
    if ((err as { code?: string }).code === "SQLITE_BUSY") {
      throw new KilnError(
        "conflict",
        "another Kiln server is already running on this data directory's SQLite database; SQLite serves a single process: stop the other one, or run several processes on PostgreSQL (KILN_DATABASE_URL)",
      );
    }
    throw new KilnError("unavailable", "cannot lock the SQLite metadata database", { cause: err });
  }
  let held = true;
  return {
    release() {
      if (!held) return;
      held = false;
      db.close();
    },
  };
}

/** What the SQLite database keeps in reserve for a full disk. */
const RESERVE_BYTES = 8 << 20;
export const RESERVE_FILE = "kiln.db-reserve";

/**
 * A file of zeros kept beside the SQLite database. On a full disk the database cannot even
 * record a deletion (its write-ahead log must grow), so nothing could ever free space: the first
 * write that finds no room releases the reserve (that write still answers 507), and what follows
 * — deleting images or bundles, recording a job's end — has room again. Made again at each start
 * when there is room for it.
 */
class Reserve {
  constructor(private readonly file: string) {}

  fill(): void {
    try {
      if (statSync(this.file, { throwIfNoEntry: false })?.size === RESERVE_BYTES) return;
      writeFileSync(this.file, Buffer.alloc(RESERVE_BYTES), { mode: 0o600 });
    } catch (err) {
      // No room for it now: the database starts without one.
      rmSync(this.file, { force: true });
      if ((err as NodeJS.ErrnoException).code !== "ENOSPC" && (err as NodeJS.ErrnoException).code !== "EDQUOT") throw err;
    }
  }

  /** Gives the reserve back to the filesystem when an error says the disk is full. */
  releaseOn(translated: unknown): void {
    if (isKilnError(translated, "insufficientStorage")) rmSync(this.file, { force: true });
  }
}

function connect(options: StoreOptions): Connection {
  if (options.databaseUrl === undefined) {
    mkdirSync(options.dataDir, { recursive: true, mode: 0o700 });
    const file = path.resolve(options.dataDir, SQLITE_FILE);
    ownerOnly(file);
    const reserve = new Reserve(path.resolve(options.dataDir, RESERVE_FILE));
    reserve.fill();
    const db = new Database(file, { timeout: SQLITE_BUSY_TIMEOUT_MS });
    // WAL: readers do not block the writer; NORMAL sync is durable across crashes of the process
    // in WAL mode (only a power loss can drop the last commits). Foreign keys are off by default
    // in SQLite and every cascade here depends on them.
    whileBusy(() => db.pragma("journal_mode = WAL"));
    db.pragma("synchronous = NORMAL");
    db.pragma("foreign_keys = ON");
    db.pragma(`busy_timeout = ${SQLITE_BUSY_TIMEOUT_MS}`);
    return { dialect: "sqlite", kysely: new SqliteDialect({ database: withStatementCache(db) }), file, reserve };
  }
  let protocol: string | undefined;
  try {
    protocol = new URL(options.databaseUrl).protocol;
  } catch {
    protocol = undefined;
  }
  if (protocol !== "postgres:" && protocol !== "postgresql:") {
    // The URL itself is not repeated: it may hold a password.
    throw new KilnError("badRequest", "KILN_DATABASE_URL must be a postgres:// or postgresql:// URL");
  }
  const pool = new pg.Pool({
    connectionString: options.databaseUrl,
    // A database that stops answering (a partition, a frozen server) fails requests after these
    // bounds instead of holding them for ever; the next request tries a new connection.
    connectionTimeoutMillis: 10_000,
    query_timeout: 60_000,
    keepAlive: true,
  });
  // An idle connection that dies (server restart) is dropped from the pool and reported here;
  // without a listener Node would crash. The next query opens a new connection or fails itself.
  pool.on("error", () => undefined);
  // A connection the pool has lent out has no listener of the pool's: if the server ends it
  // between two queries (a restart during a transaction, or just before the release), the client
  // emits "error" with no query to fail, which would crash the process. The client is then
  // unusable: the next query on it fails (and is translated), and the pool drops it on release.
  pool.on("connect", (client) => client.on("error", () => undefined));
  return { dialect: "postgres", kysely: new PostgresDialect({ pool }) };
}

/**
 * LISTEN on its own connection (a pooled one would be handed to other queries). A lost
 * connection is opened again after a pause, and `reconnected` says notices may have been missed.
 */
async function listenForJobs(url: string, onEvent: (event: string) => void): Promise<{ close(): Promise<void> }> {
  let closed = false;
  let client: pg.Client | undefined;
  let retry: NodeJS.Timeout | undefined;
  const open = async (): Promise<void> => {
    const c = new pg.Client({ connectionString: url, connectionTimeoutMillis: 10_000, keepAlive: true });
    c.on("notification", (n) => {
      if (n.channel === JOB_CHANNEL && n.payload) onEvent(n.payload);
    });
    const lost = (): void => {
      if (client !== c) return;
      client = undefined;
      c.end().catch(() => undefined);
      schedule();
    };
    c.on("error", lost);
    c.on("end", lost);
    client = c;
    try {
      await c.connect();
      await c.query(`LISTEN ${JOB_CHANNEL}`);
    } catch (err) {
      lost();
      throw err;
    }
  };
  const schedule = (): void => {
    if (closed || retry) return;
    retry = setTimeout(() => {
      retry = undefined;
      open().then(
        () => onEvent("reconnected"),
        () => undefined,
      );
    }, 1000);
    retry.unref();
  };
  // A first connection that fails is retried like a lost one; meanwhile the caller's polls serve.
  await open().catch(() => undefined);
  return {
    async close() {
      closed = true;
      if (retry) clearTimeout(retry);
      const c = client;
      client = undefined;
      await c?.end().catch(() => undefined);
    },
  };
}

function repositories(ctx: RepoContext, onWrite: () => void, onError?: (translated: unknown) => void): StoreRepositories {
  const wrap = <T extends object>(repo: T): T => translatingErrors(repo, onWrite, onError);
  return {
    users: wrap(userRepo(ctx)),
    apiKeys: wrap(apiKeyRepo(ctx)),
    distributions: wrap(distributionRepo(ctx)),
    bundles: wrap(bundleRepo(ctx)),
    artifacts: wrap(artifactRepo(ctx)),
    cloudAccounts: wrap(cloudAccountRepo(ctx)),
    templates: wrap(templateRepo(ctx)),
    downloadKeys: wrap(downloadKeyRepo(ctx)),
    jobs: wrap(jobRepo(ctx)),
    images: wrap(imageRepo(ctx)),
    publications: wrap(publicationRepo(ctx)),
    sessions: wrap(sessionRepo(ctx)),
    blobLocks: wrap(blobLockRepo(ctx)),
    leftovers: wrap(leftoverRepo(ctx)),
    bundleFiles: wrap(bundleFileRepo(ctx)),
    bundleImports: wrap(bundleImportRepo(ctx)),
    bundleExports: wrap(bundleExportRepo(ctx)),
  };
}

/**
 * Opens the store and brings its schema up to date. SQLite when `databaseUrl` is undefined
 * (`<dataDir>/kiln.db`), PostgreSQL when it is a `postgres://` URL; anything else is refused
 * with `badRequest`. An unreachable database fails with `unavailable`.
 */
export async function openStore(options: StoreOptions): Promise<Store> {
  let connection: Connection;
  try {
    connection = connect(options);
  } catch (err) {
    if (err instanceof KilnError) throw err;
    throw new KilnError("unavailable", "cannot open the SQLite metadata database", { cause: err });
  }
  const { dialect, kysely } = connection;
  const onError = connection.reserve ? (translated: unknown) => connection.reserve!.releaseOn(translated) : undefined;
  const db = new Kysely<KilnDatabase>({ dialect: kysely });
  const now = options.now ?? (() => new Date());
  try {
    await sql`select 1`.execute(db);
  } catch (err) {
    await db.destroy().catch(() => undefined);
    const which = dialect === "postgres" ? "PostgreSQL" : "SQLite";
    throw new KilnError("unavailable", `cannot reach the ${which} metadata database`, { cause: err });
  }
  try {
    await migrateOnce(db, connection);
  } catch (err) {
    await db.destroy().catch(() => undefined);
    throw err;
  }

  let closing: Promise<void> | undefined;
  let generation = 0;
  const bump = (): void => {
    generation++;
  };
  return {
    dialect,
    ...repositories({ db, now, dialect }, bump, onError),
    get generation() {
      return generation;
    },
    bump,
    async transaction(fn) {
      try {
        return await db.transaction().execute((tx) => fn(repositories({ db: tx, now, dialect }, bump, onError)));
      } catch (err) {
        const translated = translateDbError(err);
        onError?.(translated);
        throw translated;
      } finally {
        bump();
      }
    },
    async ping() {
      try {
        await sql`select 1`.execute(db);
      } catch (err) {
        const translated = translateDbError(err);
        throw isKilnError(translated) ? translated : new KilnError("unavailable", "the metadata database does not answer", { cause: err });
      }
    },
    async listen(onEvent) {
      if (dialect !== "postgres") return { close: async () => undefined };
      return listenForJobs(options.databaseUrl!, onEvent);
    },
    close() {
      closing ??= db.destroy();
      return closing;
    },
  };
}
