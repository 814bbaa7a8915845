/**
 * A bundle file's `source` given as a URL: opened as a stream (redirects followed, at most five)
 * so that it can be uploaded to Kiln as it arrives, never stored whole.
 */
import http, { type IncomingMessage } from "node:http";
import https from "node:https";
import type { Readable } from "node:stream";

const MAX_REDIRECTS = 5;

/** Opens `url` for reading; answers the body and its length when the server gives one. */
export function openUrl(url: string, redirects = 0): Promise<{ stream: Readable; size: number | undefined }> {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    const lib = u.protocol === "https:" ? https : http;
    const req = lib.get(u, { headers: { "user-agent": "kiln-cli", accept: "*/*" } }, (res: IncomingMessage) => {
      const status = res.statusCode ?? 0;
      if (status >= 300 && status < 400 && res.headers.location) {
        res.resume();
        if (redirects >= MAX_REDIRECTS) {
          reject(new Error(`cannot download ${url}: more than ${MAX_REDIRECTS} redirects`));
          return;
        }
        const next = new URL(res.headers.location, u);
        if (next.protocol !== "http:" && next.protocol !== "https:") {
          reject(new Error(`cannot download ${url}: redirected to ${next.protocol} URL`));
          return;
        }
        openUrl(next.href, redirects + 1).then(resolve, reject);
        return;
      }
      if (status !== 200) {
        res.resume();
        reject(new Error(`cannot download ${url}: HTTP ${status}`));
        return;
      }
      const length = Number(res.headers["content-length"]);
      resolve({ stream: res, size: Number.isFinite(length) ? length : undefined });
    });
    req.setTimeout(60_000, () => req.destroy(new Error("no answer for 60 s")));
    req.on("error", (err) => reject(new Error(`cannot download ${url}: ${(err as NodeJS.ErrnoException).code ?? err.message}`)));
  });
}
