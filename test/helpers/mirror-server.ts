/**
 * A static HTTP server on 127.0.0.1 for repository tests: serves a directory like a Debian
 * mirror does (ETag, Last-Modified, conditional requests), records every request, and can be
 * told to misbehave (503s, connections cut mid-body, slow bodies, required credentials).
 */
import { createReadStream } from "node:fs";
import { readFile, stat } from "node:fs/promises";
import { createServer, type IncomingHttpHeaders, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import path from "node:path";

export interface ServedRequest {
  path: string;
  headers: IncomingHttpHeaders;
  status: number;
}

export class MirrorServer {
  /** Every request, in arrival order. */
  readonly requests: ServedRequest[] = [];
  /** Paths answered with 503 for their next N requests. */
  readonly failNext = new Map<string, number>();
  /** Paths whose next N bodies are cut off half way (the socket is destroyed). */
  readonly cutNext = new Map<string, number>();
  /** Milliseconds to wait before sending a `.deb` body (to make parallel downloads overlap). */
  debDelayMs = 0;
  /**
   * While set, `.deb` requests are held until {@link release} (or close): `"headers"` before a
   * byte of the answer is sent, `"body"` after the headers and half the body (a stalled mirror).
   */
  holdDebs: "headers" | "body" | undefined;
  /** `.deb` requests held right now, and how many of them the client gave up (closed). */
  readonly held = { now: 0, abandoned: 0 };
  private releaseHeld = new Set<() => void>();
  private heldChanged = new Set<() => void>();
  /** False: `Range` headers are ignored (the whole file answers 200), as some servers do. */
  honourRange = true;
  /** When set, requests must carry this `Authorization` header. */
  requireAuthorization: string | undefined;
  private inFlight = 0;
  /** The most `.deb` downloads that were in flight at once. */
  maxDebsInFlight = 0;

  private constructor(
    private readonly server: Server,
    readonly root: string,
    readonly url: string,
  ) {}

  static async start(root: string): Promise<MirrorServer> {
    let self: MirrorServer | undefined;
    const server = createServer((req, res) => {
      void self!.handle(req.url ?? "/", req.headers, res);
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const { port } = server.address() as AddressInfo;
    self = new MirrorServer(server, root, `http://127.0.0.1:${port}/`);
    return self;
  }

  /** Requests for one path (e.g. `/dists/stable/InRelease`). */
  requestsFor(p: string): ServedRequest[] {
    return this.requests.filter((r) => r.path === p);
  }

  /** Requests whose path ends with `.deb`. */
  debRequests(): ServedRequest[] {
    return this.requests.filter((r) => r.path.endsWith(".deb"));
  }

  /** Resolves once `until(held)` holds (checked whenever a held request arrives or ends). */
  async whenHeld(until: (held: { now: number; abandoned: number }) => boolean): Promise<void> {
    while (!until(this.held)) await new Promise<void>((resolve) => this.heldChanged.add(resolve));
  }

  /** Lets every held `.deb` request go on (and stops holding new ones). */
  release(): void {
    this.holdDebs = undefined;
    for (const go of this.releaseHeld) go();
    this.releaseHeld.clear();
  }

  private notifyHeld(): void {
    const waiters = [...this.heldChanged];
    this.heldChanged.clear();
    for (const w of waiters) w();
  }

  /** Holds a response until released; true when the client closed it meanwhile. */
  private async hold(res: ServerResponse): Promise<boolean> {
    this.held.now++;
    this.notifyHeld();
    const abandoned = await new Promise<boolean>((resolve) => {
      // The client may have closed the connection already (its 'close' came and went).
      if (res.destroyed || !res.socket || res.socket.destroyed) return resolve(true);
      const go = () => {
        res.off("close", gone);
        resolve(false);
      };
      const gone = () => {
        this.releaseHeld.delete(go);
        resolve(true);
      };
      this.releaseHeld.add(go);
      res.once("close", gone);
    });
    this.held.now--;
    if (abandoned) this.held.abandoned++;
    this.notifyHeld();
    return abandoned;
  }

  async close(): Promise<void> {
    this.release();
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private async handle(rawUrl: string, headers: IncomingHttpHeaders, res: ServerResponse): Promise<void> {
    const urlPath = decodeURIComponent(new URL(rawUrl, "http://x").pathname);
    const record = (status: number) => this.requests.push({ path: urlPath, headers, status });
    if (this.requireAuthorization !== undefined && headers.authorization !== this.requireAuthorization) {
      record(401);
      res.writeHead(401).end();
      return;
    }
    const failures = this.failNext.get(urlPath) ?? 0;
    if (failures > 0) {
      this.failNext.set(urlPath, failures - 1);
      record(503);
      res.writeHead(503).end("try later");
      return;
    }
    const file = path.join(this.root, urlPath);
    if (!file.startsWith(this.root)) {
      record(403);
      res.writeHead(403).end();
      return;
    }
    const st = await stat(file).catch(() => undefined);
    if (!st?.isFile()) {
      record(404);
      res.writeHead(404).end("not found");
      return;
    }
    const etag = `"${st.size.toString(16)}-${Math.floor(st.mtimeMs).toString(16)}"`;
    const lastModified = new Date(Math.floor(st.mtimeMs / 1000) * 1000).toUTCString();
    const since = headers["if-modified-since"] ? Date.parse(headers["if-modified-since"]) : NaN;
    const notModified = headers["if-none-match"] !== undefined ? headers["if-none-match"] === etag : !Number.isNaN(since) && Math.floor(st.mtimeMs / 1000) * 1000 <= since;
    if (notModified) {
      record(304);
      res.writeHead(304, { etag, "last-modified": lastModified }).end();
      return;
    }
    const isDeb = urlPath.endsWith(".deb");
    // `Range: bytes=a-b` (one range, as a .deb header lookup sends it) gets its 206, as Apache and nginx answer.
    const range = this.honourRange ? /^bytes=(\d+)-(\d+)$/.exec(headers.range ?? "") : null;
    if (range) {
      const start = Number(range[1]);
      const end = Math.min(Number(range[2]), st.size - 1);
      record(206);
      res.writeHead(206, { "content-length": end - start + 1, "content-range": `bytes ${start}-${end}/${st.size}`, etag, "last-modified": lastModified });
      createReadStream(file, { start, end }).on("error", () => res.destroy()).pipe(res);
      return;
    }
    if (isDeb && this.holdDebs === "headers" && (await this.hold(res))) {
      record(499);
      return;
    }
    record(200);
    res.writeHead(200, { "content-length": st.size, etag, "last-modified": lastModified, "content-type": "application/octet-stream" });
    if (isDeb && this.holdDebs === "body") {
      res.flushHeaders();
      const half = await readFile(file).then((b) => b.subarray(0, Math.floor(b.length / 2)));
      res.write(half);
      if (await this.hold(res)) return;
      createReadStream(file, { start: half.length }).on("error", () => res.destroy()).pipe(res);
      return;
    }
    if (isDeb) {
      this.inFlight++;
      this.maxDebsInFlight = Math.max(this.maxDebsInFlight, this.inFlight);
      if (this.debDelayMs > 0) await new Promise((r) => setTimeout(r, this.debDelayMs));
    }
    const done = () => {
      if (isDeb) this.inFlight--;
    };
    // The client may have given up (a cancelled download) while we waited.
    if (res.destroyed) {
      done();
      return;
    }
    const cuts = this.cutNext.get(urlPath) ?? 0;
    if (cuts > 0) {
      this.cutNext.set(urlPath, cuts - 1);
      const half = createReadStream(file, { start: 0, end: Math.max(0, Math.floor(st.size / 2) - 1) });
      half.on("error", () => res.destroy());
      half.on("data", (c) => res.write(c));
      half.on("end", () => {
        res.socket?.destroy();
        done();
      });
      return;
    }
    const body = createReadStream(file);
    body.on("error", () => res.destroy());
    body.pipe(res);
    res.on("close", done);
  }
}
