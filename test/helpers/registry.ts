/**
 * A real registry for the tests: Debian's `docker-registry` (distribution 2.8) on a free loopback
 * port, with a generated config and its storage in a temp dir, in three modes — no auth, htpasswd
 * (bcrypt entries from `htpasswd -B`, or Python's crypt as a fallback) and token auth (a token
 * service written here signs RS256 JWTs whose `x5c` header carries a self-signed certificate the
 * registry is configured to trust, as distribution's `registry/auth/token` verifies them).
 *
 * Also a recording, fault-injecting, throttling HTTP proxy to put between client and registry.
 */
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { createSign, randomUUID } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import http, { type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";

export const run = promisify(execFile);

const REGISTRY_BIN = "/usr/bin/docker-registry";
export const TOKEN_SERVICE = "kiln-test-registry";
export const TOKEN_ISSUER = "kiln-test-issuer";

/** Options of {@link startRegistry}. */
export interface RegistryOptions {
  auth?: "none" | "htpasswd" | "token";
  /** Accounts (htpasswd and token modes); in token mode, user `*` accepts any name with its password. */
  users?: Record<string, string>;
  /** `storage.delete.enabled` (default true). */
  deleteEnabled?: boolean;
  /** Token mode: `expires_in` the service announces (seconds). */
  tokenExpiresIn?: number;
  /**
   * Token mode: how long a token is really accepted (seconds). Shorter than `tokenExpiresIn`
   * makes the registry refuse a token the client still believes valid (a `401` mid-push).
   * distribution allows 60 s of leeway past `exp`; the service subtracts it.
   */
  tokenLifetime?: number;
}

/** A running registry. */
export interface TestRegistry {
  /** `http://127.0.0.1:PORT` */
  url: string;
  /** `127.0.0.1:PORT` */
  host: string;
  port: number;
  dataDir: string;
  token?: TokenService;
  /** Stops the registry (and the token service) and removes its storage. */
  stop(): Promise<void>;
  /** SIGKILLs the registry at once (a crash mid-push). */
  kill(): Promise<void>;
  /**
   * Stops the registry and starts it again on the same port and storage, with `deleteEnabled`
   * changed when given (an operator turning deletion on).
   */
  restart(options?: { deleteEnabled?: boolean }): Promise<void>;
}

/** The token service of a token-auth registry. */
export interface TokenService {
  url: string;
  /** Token requests received, and the scopes of each. */
  requests: Array<{ account: string | undefined; scopes: string[]; status: number }>;
  /** Changes the announced and real lifetimes of the tokens issued from now on. */
  setLifetime(expiresIn: number, lifetime: number): void;
}

async function bcryptEntry(user: string, password: string): Promise<string> {
  if (existsSync("/usr/bin/htpasswd")) {
    const { stdout } = await run("/usr/bin/htpasswd", ["-nbB", "-C", "4", user, password]);
    return stdout.trim();
  }
  // distribution's htpasswd accepts any bcrypt ($2a$/$2b$/$2y$); glibc's crypt makes $2b$.
  const { stdout } = await run("python3", ["-W", "ignore", "-c", "import crypt,sys; print(crypt.crypt(sys.argv[1], crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=16)))", password]);
  return `${user}:${stdout.trim()}`;
}

function base64url(data: Buffer | string): string {
  return Buffer.from(data).toString("base64url");
}

async function startTokenService(dir: string, users: Record<string, string>, expiresIn: number, lifetime: number): Promise<{ service: TokenService; certPath: string; close: () => Promise<void> }> {
  const keyPath = path.join(dir, "token.key");
  const certPath = path.join(dir, "token.crt");
  await run("openssl", ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", keyPath, "-out", certPath, "-days", "2", "-subj", "/CN=kiln-test-token", "-sha256"]);
  const key = await readFile(keyPath, "utf8");
  const certDer = (await readFile(certPath, "utf8")).replace(/-----[A-Z ]+-----/g, "").replace(/\s+/g, "");
  let announced = expiresIn;
  let real = lifetime;
  const requests: TokenService["requests"] = [];

  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? "/", "http://x");
    const scopes = url.searchParams.getAll("scope");
    let account: string | undefined;
    const auth = req.headers.authorization;
    if (auth?.startsWith("Basic ")) {
      const [user, ...rest] = Buffer.from(auth.slice(6), "base64").toString("utf8").split(":");
      const pass = rest.join(":");
      // "*" stands for OpenShift's rule: any user name, the token as the password.
      const known = users[user!] ?? users["*"];
      if (known === undefined || known !== pass) {
        requests.push({ account: user, scopes, status: 401 });
        res.writeHead(401, { "content-type": "application/json" }).end(JSON.stringify({ errors: [{ code: "UNAUTHORIZED", message: "invalid username or password" }] }));
        return;
      }
      account = user;
    }
    // Accounts get what they ask for; anonymous callers get nothing (so pushes are refused).
    const access = account
      ? scopes.map((s) => {
          const [type, ...mid] = s.split(":");
          const actions = mid.pop()!.split(",");
          return { type, name: mid.join(":"), actions };
        })
      : [];
    const now = Math.floor(Date.now() / 1000);
    const header = { typ: "JWT", alg: "RS256", x5c: [certDer] };
    const claims = { iss: TOKEN_ISSUER, sub: account ?? "", aud: TOKEN_SERVICE, exp: now + real - 60, nbf: now - 1, iat: now, jti: randomUUID(), access };
    const signingInput = `${base64url(JSON.stringify(header))}.${base64url(JSON.stringify(claims))}`;
    const signature = createSign("RSA-SHA256").update(signingInput).sign(key);
    const token = `${signingInput}.${base64url(signature)}`;
    requests.push({ account, scopes, status: 200 });
    res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ token, expires_in: announced, issued_at: new Date(now * 1000).toISOString() }));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    service: {
      url: `http://127.0.0.1:${port}/token`,
      requests,
      setLifetime(e, l) {
        announced = e;
        real = l;
      },
    },
    certPath,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** Starts Debian's docker-registry on a free loopback port; resolves once it answers `/v2/`. */
export async function startRegistry(options: RegistryOptions = {}): Promise<TestRegistry> {
  const mode = options.auth ?? "none";
  const users = options.users ?? {};
  const dir = await mkdtemp(path.join(os.tmpdir(), "kiln-registry-"));
  const dataDir = path.join(dir, "data");
  let authConfig = "";
  let token: Awaited<ReturnType<typeof startTokenService>> | undefined;
  if (mode === "htpasswd") {
    const lines = await Promise.all(Object.entries(users).map(([u, p]) => bcryptEntry(u, p)));
    await writeFile(path.join(dir, "htpasswd"), `${lines.join("\n")}\n`);
    authConfig = `auth:\n  htpasswd:\n    realm: kiln-test\n    path: ${path.join(dir, "htpasswd")}\n`;
  } else if (mode === "token") {
    token = await startTokenService(dir, users, options.tokenExpiresIn ?? 300, options.tokenLifetime ?? options.tokenExpiresIn ?? 300);
    authConfig = `auth:\n  token:\n    realm: ${token.service.url}\n    service: ${TOKEN_SERVICE}\n    issuer: ${TOKEN_ISSUER}\n    rootcertbundle: ${token.certPath}\n`;
  }
  const configText = (addr: string, deleteEnabled: boolean): string =>
    [
      "version: 0.1",
      "log:",
      "  level: info",
      "  accesslog:",
      "    disabled: true",
      "storage:",
      "  filesystem:",
      `    rootdirectory: ${dataDir}`,
      "  delete:",
      `    enabled: ${deleteEnabled}`,
      "  maintenance:",
      "    uploadpurging:",
      "      enabled: false",
      "http:",
      `  addr: ${addr}`,
      `  secret: ${randomUUID()}`,
      authConfig,
    ].join("\n");
  const configPath = path.join(dir, "config.yml");
  let deleteEnabled = options.deleteEnabled ?? true;
  await writeFile(configPath, configText("127.0.0.1:0", deleteEnabled));

  /** Starts the registry on the config file; resolves with its port and a promise of its exit. */
  const launch = async (): Promise<{ child: ChildProcess; port: number; exited: Promise<void> }> => {
    const child: ChildProcess = spawn(REGISTRY_BIN, ["serve", configPath], { stdio: ["ignore", "pipe", "pipe"] });
    let log = "";
    const port = await new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`docker-registry did not start:\n${log}`)), 10_000);
      const onData = (d: Buffer): void => {
        log += d.toString();
        const m = /listening on 127\.0\.0\.1:(\d+)/.exec(log);
        if (m) {
          clearTimeout(timer);
          resolve(Number(m[1]));
        }
        if (log.length > 1 << 20) log = log.slice(-4096);
      };
      child.stdout!.on("data", onData);
      child.stderr!.on("data", onData);
      child.once("exit", (code) => {
        clearTimeout(timer);
        reject(new Error(`docker-registry exited with ${code}:\n${log}`));
      });
    });
    const exited = new Promise<void>((resolve) => (child.exitCode !== null ? resolve() : child.once("exit", () => resolve())));
    return { child, port, exited };
  };
  let running = await launch();
  const port = running.port;
  const host = `127.0.0.1:${port}`;
  const kill = async (): Promise<void> => {
    if (running.child.exitCode === null && running.child.signalCode === null) running.child.kill("SIGKILL");
    await running.exited;
  };
  const terminate = async (): Promise<void> => {
    const { child, exited } = running;
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
    const timer = setTimeout(() => child.kill("SIGKILL"), 3000);
    await exited;
    clearTimeout(timer);
  };
  return {
    url: `http://${host}`,
    host,
    port,
    dataDir,
    ...(token ? { token: token.service } : {}),
    kill,
    async restart(changes = {}) {
      await terminate();
      deleteEnabled = changes.deleteEnabled ?? deleteEnabled;
      await writeFile(configPath, configText(host, deleteEnabled));
      running = await launch();
    },
    async stop() {
      await terminate();
      await token?.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

// -------------------------------------------------------------------------------------------------

/** One request as the proxy saw it. */
export interface ProxyRecord {
  index: number;
  method: string;
  /** Path and query. */
  url: string;
  /** Request-body bytes forwarded to the registry (0 for an injected fault). */
  bytesForwarded: number;
  /** Request-body bytes received from the client. */
  bytesReceived: number;
  status: number;
  authorization: string | undefined;
  at: number;
  fault: boolean;
}

/** What the fault hook may do with a request instead of forwarding it (or before: `hold` delays it until the promise settles). */
export type Fault = { status: number; headers?: Record<string, string>; body?: string } | "reset" | { hold: Promise<void> };

/** Options of {@link startProxy}. */
export interface ProxyOptions {
  /** Decides per request; `undefined` forwards it. */
  fault?: (r: { index: number; method: string; url: string }) => Fault | undefined;
  /** Edits the registry's response headers before they reach the client. */
  rewriteHeaders?: (r: { method: string; url: string; status: number }, headers: Record<string, string | string[]>) => void;
  /** Holds the registry's answer (the request was done) until the promise settles, when it gives one. */
  holdResponse?: (r: { method: string; url: string; status: number }) => Promise<void> | undefined;
  /** Slows request bodies to this rate (a push that lasts long enough to interrupt). */
  bytesPerSecond?: number;
}

/** A running proxy. */
export interface TestProxy {
  url: string;
  host: string;
  records: ProxyRecord[];
  /** Client connections currently open. */
  openConnections(): number;
  /** Closes the listener and every connection. */
  stop(): Promise<void>;
}

/** An HTTP proxy in front of `targetPort` that records, throttles and injects faults. */
export async function startProxy(targetPort: number, options: ProxyOptions = {}): Promise<TestProxy> {
  const records: ProxyRecord[] = [];
  const sockets = new Set<Socket>();
  let index = 0;

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const rec: ProxyRecord = {
      index: index++,
      method: req.method ?? "GET",
      url: req.url ?? "/",
      bytesForwarded: 0,
      bytesReceived: 0,
      status: 0,
      authorization: req.headers.authorization,
      at: Date.now(),
      fault: false,
    };
    records.push(rec);
    let fault = options.fault?.({ index: rec.index, method: rec.method, url: rec.url });
    if (typeof fault === "object" && "hold" in fault) {
      rec.fault = true;
      await fault.hold;
      fault = undefined;
    }
    if (fault !== undefined) {
      rec.fault = true;
      if (fault === "reset") {
        req.socket.destroy();
        return;
      }
      req.on("data", (c: Buffer) => (rec.bytesReceived += c.length));
      await new Promise((resolve) => req.once("end", resolve).once("error", resolve).once("close", resolve));
      rec.status = fault.status;
      res.writeHead(fault.status, { "content-type": "application/json", ...fault.headers }).end(fault.body ?? "");
      return;
    }
    const upstream = http.request({ host: "127.0.0.1", port: targetPort, method: rec.method, path: rec.url, headers: req.headers });
    upstream.on("response", (ures) => {
      rec.status = ures.statusCode ?? 0;
      const headers = { ...ures.headers } as Record<string, string | string[]>;
      options.rewriteHeaders?.({ method: rec.method, url: rec.url, status: rec.status }, headers);
      const send = (): void => {
        res.writeHead(rec.status, headers);
        ures.pipe(res);
        ures.on("error", () => res.destroy());
      };
      const held = options.holdResponse?.({ method: rec.method, url: rec.url, status: rec.status });
      if (held) void held.then(send);
      else send();
    });
    // The registry gone (or refusing mid-body): the client sees its connection reset.
    upstream.on("error", () => req.socket.destroy());
    const rate = options.bytesPerSecond;
    try {
      for await (const chunk of req as AsyncIterable<Buffer>) {
        rec.bytesReceived += chunk.length;
        for (let off = 0; off < chunk.length; off += 16 << 10) {
          const piece = chunk.subarray(off, off + (16 << 10));
          if (rate) await new Promise((r) => setTimeout(r, (piece.length / rate) * 1000));
          if (upstream.destroyed) break;
          if (!upstream.write(piece)) {
            await new Promise<void>((resolve) => {
              const done = (): void => {
                upstream.off("drain", done).off("close", done);
                resolve();
              };
              upstream.on("drain", done).on("close", done);
            });
          }
          rec.bytesForwarded += piece.length;
        }
      }
      upstream.end();
    } catch {
      upstream.destroy();
    }
  };

  const server = http.createServer((req, res) => {
    handle(req, res).catch(() => req.socket.destroy());
  });
  server.on("connection", (s: Socket) => {
    sockets.add(s);
    s.once("close", () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    host: `127.0.0.1:${port}`,
    records,
    openConnections: () => sockets.size,
    stop: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
