/**
 * Jobs are claimed with leases, so that several worker processes share one queue: a running job
 * names its worker (`lease_owner`), until when the claim holds (`lease_expires`, renewed while
 * the worker works), and a fencing token (`lease_token`, one more at every claim) that every
 * write on the job's behalf must present — a worker whose lease was taken over writes nothing.
 * Jobs left running by an older Kiln have no lease: they count as expired and are resumed.
 */
import type { Kysely } from "kysely";
import type { KilnMigration } from "./index.js";

async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable("jobs").addColumn("lease_owner", "text").execute();
  await db.schema.alterTable("jobs").addColumn("lease_expires", "bigint").execute();
  await db.schema.alterTable("jobs").addColumn("lease_token", "bigint", (c) => c.notNull().defaultTo(0)).execute();
}

export const jobLeases: KilnMigration = { up };
