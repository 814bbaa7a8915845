// A .tar.gz in memory for the benchmarks' bundles: [name, content, mode] entries, mtime 0.
import { gzipSync } from "node:zlib";
import tar from "tar-stream";

export async function tgz(files) {
  const pack = tar.pack();
  const chunks = [];
  const done = (async () => {
    for await (const c of pack) chunks.push(c);
  })();
  for (const [name, content, mode] of files) pack.entry({ name, mode: mode ?? 0o644, mtime: new Date(0) }, content);
  pack.finalize();
  await done;
  return gzipSync(Buffer.concat(chunks));
}
