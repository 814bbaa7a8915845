// A local Debian mirror directory served read-only on loopback, for the benchmarks that build
// from one (tests have test/helpers/mirror-server.ts, with faults to inject).
import { createReadStream, statSync } from "node:fs";
import { createServer } from "node:http";
import path from "node:path";

/** Serves `dir`'s files by path; returns its URL (ending in `/`), the server, and `close()`. */
export async function serveMirror(dir) {
  const server = createServer((req, res) => {
    const file = path.join(dir, decodeURIComponent(new URL(req.url, "http://x").pathname));
    if (!file.startsWith(dir)) return res.writeHead(403).end();
    let st;
    try {
      st = statSync(file);
    } catch {
      return res.writeHead(404).end();
    }
    if (!st.isFile()) return res.writeHead(404).end();
    res.writeHead(200, { "content-length": st.size });
    createReadStream(file).pipe(res);
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  return { url: `http://127.0.0.1:${server.address().port}/`, server, close: () => new Promise((resolve) => server.close(resolve)) };
}
