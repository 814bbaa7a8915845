/**
 * `kiln serve` as real processes (the compiled command, bin/kiln.js): started with an environment
 * and a role, waited for until they listen, stopped with a signal. For the multi-process tests:
 * an `api` and `worker`s on one PostgreSQL database and one blob store.
 */
import { execFile, spawn, type ChildProcess } from "node:child_process";
import path from "node:path";
import { ROOT } from "./global-setup.js";

export interface KilnProcess {
  child: ChildProcess;
  port: number;
  url: string;
  pid: number;
  /** Everything it wrote (stdout and stderr). */
  output(): string;
  /** Resolves with the exit code (or the signal) once it has exited. */
  exited: Promise<number | string | null>;
  /** SIGTERM, and waits for the exit code. */
  stop(): Promise<number | string | null>;
  /** SIGKILL at once (a machine that dies), and waits for the exit. */
  kill(): Promise<number | string | null>;
}

/** How a `kiln` command ended. */
export interface KilnRun {
  status: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs a `kiln` command to its end without blocking this process: what it talks to (a local
 * mirror, a server) may be served from here, so a synchronous spawn would wait on itself.
 */
export function runKiln(args: string[], options: { cwd: string; env: Record<string, string>; timeout?: number }): Promise<KilnRun> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [path.join(ROOT, "bin/kiln.js"), ...args],
      { cwd: options.cwd, env: { ...process.env, ...options.env }, encoding: "utf8", timeout: options.timeout ?? 180_000, maxBuffer: 16 << 20 },
      (err, stdout, stderr) => resolve({ status: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

/**
 * Runs `kiln serve` (with `--role` when given) until it exits: for the refusals. A server that
 * was not refused and serves instead (on a free port) is killed once it listens, and answers
 * code null with its output, so that the test fails on it rather than wait for ever.
 */
export function runServe(env: Record<string, string>, role?: string): Promise<{ code: number | null; output: string }> {
  const child = spawn(process.execPath, [path.join(ROOT, "bin/kiln.js"), "serve", ...(role ? ["--role", role] : [])], {
    env: { ...process.env, KILN_PORT: "0", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  const onData = (d: Buffer): void => {
    out += d.toString();
    if (/listening at http/.test(out)) child.kill("SIGKILL");
  };
  child.stdout!.on("data", onData);
  child.stderr!.on("data", onData);
  return new Promise((resolve) => child.on("exit", (code) => resolve({ code, output: out })));
}

/** Starts `kiln serve --role <role>` and resolves once it listens. */
export function startKiln(env: Record<string, string>, role: "all" | "api" | "worker" = "all"): Promise<KilnProcess> {
  const child = spawn(process.execPath, [path.join(ROOT, "bin/kiln.js"), "serve", "--role", role], {
    env: { ...process.env, KILN_PORT: "0", KILN_CONFIG: "", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  child.stdout!.on("data", (d: Buffer) => (out += d.toString()));
  child.stderr!.on("data", (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | string | null>((resolve) => child.once("exit", (code, signal) => resolve(code ?? signal)));
  const ended = (): Promise<number | string | null> => exited;
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`kiln serve --role ${role} did not start:\n${out}`));
    }, 60_000);
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`kiln serve --role ${role} exited with ${code}:\n${out}`));
    });
    const poll = setInterval(() => {
      const m = /listening at http:\/\/127\.0\.0\.1:(\d+)/.exec(out);
      if (!m) return;
      clearInterval(poll);
      clearTimeout(timer);
      const port = Number(m[1]);
      resolve({
        child,
        port,
        url: `http://127.0.0.1:${port}`,
        pid: child.pid!,
        output: () => out,
        exited,
        stop: () => (child.exitCode === null && child.signalCode === null && child.kill("SIGTERM"), ended()),
        kill: () => (child.exitCode === null && child.signalCode === null && child.kill("SIGKILL"), ended()),
      });
    }, 50);
    void exited.finally(() => clearInterval(poll));
  });
}
