/**
 * A PostgreSQL server of a test's own, to stop and start under a running Kiln: the shared server
 * on 127.0.0.1:5432 serves every engineer's tests at once and must never go down. This one is a
 * fresh cluster (`initdb`) in a temp dir, run by the `postgres` user (PostgreSQL refuses to run as
 * root) on a free loopback port. Stopping it is the real thing: PostgreSQL ends every session
 * (`57P01`), refuses new ones while it shuts down and starts (`57P03`), and then the port is closed
 * (`ECONNREFUSED`) — what a Kiln server meets when its database restarts.
 */
import { execFile } from "node:child_process";
import { chownSync, existsSync, mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir, userInfo } from "node:os";
import path from "node:path";
import { promisify } from "node:util";

const run = promisify(execFile);

const BIN = "/usr/lib/postgresql/15/bin";
const OWNER = "postgres";

export interface PostgresServer {
  port: number;
  /** `postgres://postgres@127.0.0.1:<port>/<db>` */
  url(db?: string): string;
  /** Stops the server: `fast` ends sessions cleanly, `immediate` is a crash (no shutdown checkpoint). */
  stop(mode?: "fast" | "immediate"): Promise<void>;
  start(): Promise<void>;
  running(): boolean;
  /** Stops it for good and removes its files. */
  destroy(): Promise<void>;
}

async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((resolve) => srv.listen(0, "127.0.0.1", resolve));
  const port = (srv.address() as { port: number }).port;
  await new Promise<void>((resolve) => srv.close(() => resolve()));
  return port;
}

/** Runs a PostgreSQL program as the `postgres` user (directly when this process is not root). */
function asOwner(program: string, args: string[]): Promise<{ stdout: string; stderr: string }> {
  const bin = path.join(BIN, program);
  if (userInfo().uid !== 0) return run(bin, args);
  return run("runuser", ["-u", OWNER, "--", bin, ...args]);
}

/** Creates and starts a new cluster with trust authentication on loopback. */
export async function startPostgres(): Promise<PostgresServer> {
  if (!existsSync(path.join(BIN, "initdb"))) throw new Error(`PostgreSQL 15's server programs are missing from ${BIN} (apt-get install postgresql-15)`);
  const dir = mkdtempSync(path.join(tmpdir(), "kiln-pg-"));
  if (userInfo().uid === 0) {
    const { stdout } = await run("id", ["-u", OWNER]);
    const { stdout: gid } = await run("id", ["-g", OWNER]);
    chownSync(dir, Number(stdout.trim()), Number(gid.trim()));
  }
  const data = path.join(dir, "data");
  await asOwner("initdb", ["-D", data, "-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-sync", "--no-instructions"]);
  const port = await freePort();
  let up = false;
  const options = [`-p ${port}`, "-c listen_addresses=127.0.0.1", `-k ${dir}`, "-c fsync=off", "-c full_page_writes=off", "-c synchronous_commit=off", "-c max_connections=50"].join(" ");
  const server: PostgresServer = {
    port,
    url: (db = "postgres") => `postgres://postgres@127.0.0.1:${port}/${db}`,
    async start() {
      await asOwner("pg_ctl", ["-D", data, "-o", options, "-l", path.join(dir, "log"), "-w", "-t", "60", "start"]);
      up = true;
    },
    async stop(mode = "fast") {
      await asOwner("pg_ctl", ["-D", data, "-m", mode, "-w", "-t", "60", "stop"]);
      up = false;
    },
    running: () => up,
    async destroy() {
      if (up) await server.stop("immediate").catch(() => undefined);
      rmSync(dir, { recursive: true, force: true });
    },
  };
  await server.start();
  return server;
}
