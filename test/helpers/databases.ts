/**
 * The databases the shared store suite runs on: a fresh SQLite data directory, and a fresh
 * PostgreSQL database on the local server (created here, dropped at the end).
 */
import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import Database from "better-sqlite3";
import pg from "pg";
import { SQLITE_FILE } from "../../src/store/store.js";
import type { StoreOptions } from "../../src/store/store.js";

/** The local PostgreSQL server's maintenance database (trust auth on loopback). */
export const PG_ADMIN_URL = "postgres://postgres@127.0.0.1:5432/postgres";

/** One database to run the suite on. */
export interface StoreTarget {
  dialect: "sqlite" | "postgres";
  /** Creates an empty database; returns how to open it and how to read it behind the store's back. */
  create(): Promise<TargetDatabase>;
}

export interface TargetDatabase {
  options: Pick<StoreOptions, "dataDir" | "databaseUrl">;
  /** Runs raw SQL directly on the database (to check what the store left there). */
  query(text: string): Promise<Array<Record<string, unknown>>>;
  drop(): Promise<void>;
}

async function adminQuery(text: string): Promise<void> {
  const client = new pg.Client({ connectionString: PG_ADMIN_URL });
  await client.connect();
  try {
    await client.query(text);
  } finally {
    await client.end();
  }
}

export const sqliteTarget: StoreTarget = {
  dialect: "sqlite",
  async create() {
    const dataDir = await mkdtemp(path.join(tmpdir(), "kiln-store-"));
    return {
      options: { dataDir },
      async query(text) {
        const db = new Database(path.join(dataDir, SQLITE_FILE), { readonly: true });
        try {
          return db.prepare(text).all() as Array<Record<string, unknown>>;
        } finally {
          db.close();
        }
      },
      drop: () => rm(dataDir, { recursive: true, force: true }),
    };
  },
};

export const postgresTarget: StoreTarget = {
  dialect: "postgres",
  async create() {
    const name = `kiln_test_${randomBytes(6).toString("hex")}`;
    await adminQuery(`CREATE DATABASE ${name}`);
    const url = `postgres://postgres@127.0.0.1:5432/${name}`;
    const dataDir = await mkdtemp(path.join(tmpdir(), "kiln-store-pg-"));
    return {
      options: { dataDir, databaseUrl: url },
      async query(text) {
        const client = new pg.Client({ connectionString: url });
        await client.connect();
        try {
          return (await client.query(text)).rows as Array<Record<string, unknown>>;
        } finally {
          await client.end();
        }
      },
      async drop() {
        await adminQuery(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
        await rm(dataDir, { recursive: true, force: true });
      },
    };
  },
};
