#!/usr/bin/env node
/**
 * Benchmarks Kiln's registry push against skopeo, on Debian's docker-registry on loopback.
 *
 *   npm run build && node bench/registry-push.mjs [OCI_LAYOUT_DIR[:tag]] [--runs N] [--layers N] [--chunk-mib N] [--monolithic-mib N]
 *
 * The OCI layout (what the builder writes) is imported into a temporary blob store. Without one,
 * a minbase-like layout is made from the local mirror's packages (`dpkg-deb -x` into four trees,
 * `umoci insert` each as a layer; `--layers` sets how many), which is the image the design's anchor speaks of.
 *
 * Each run pushes to a fresh registry (so neither tool finds blobs the other left behind), Kiln
 * and skopeo alternately; medians are printed with their ratio. Then the image is published again
 * under a new tag, and the time and the layer bytes uploaded are printed (goal: 0 bytes, < 0.5 s).
 */
import { execFile, execFileSync, spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import { createReadStream, existsSync, readdirSync } from "node:fs";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { pipeline } from "node:stream/promises";
import { promisify } from "node:util";
import { BlobStore } from "../dist/blobs/blob-store.js";
import { ingestBlob, settle } from "../dist/oci/blob-write.js";
import { loadImage } from "../dist/oci/load.js";
import { pushImage } from "../dist/registry/push.js";

const run = promisify(execFile);
const ROOT = path.resolve(import.meta.dirname, "..");

const args = process.argv.slice(2);
const option = (name, fallback) => {
  const i = args.indexOf(name);
  if (i < 0) return fallback;
  const v = Number(args[i + 1]);
  args.splice(i, 2);
  return v;
};
const runs = option("--runs", 5);
const layerCount = option("--layers", 4);
const chunkMib = option("--chunk-mib", undefined);
const monolithicMib = option("--monolithic-mib", undefined);
const clientOptions = {
  ...(chunkMib !== undefined ? { chunkBytes: chunkMib << 20 } : {}),
  ...(monolithicMib !== undefined ? { monolithicMaxBytes: monolithicMib << 20 } : {}),
};

const scratch = await mkdtemp(path.join(os.tmpdir(), "kiln-bench-registry-"));

/** A minbase-like OCI layout from the local mirror, in `--layers` layers (default 4). */
async function makeLayout() {
  const mirror = process.env.MIRROR_DIR ?? path.join(ROOT, ".cache/mirror");
  const pool = path.join(mirror, "pool");
  if (!existsSync(pool)) throw new Error(`no local mirror at ${mirror}: run the tests once (or tools/make-local-mirror.sh)`);
  const debs = readdirSync(pool).filter((f) => f.endsWith(".deb")).sort();
  const layout = path.join(scratch, "layout");
  execFileSync("umoci", ["init", "--layout", layout]);
  execFileSync("umoci", ["new", "--image", `${layout}:bench`]);
  const groups = layerCount;
  for (let g = 0; g < groups; g++) {
    const tree = path.join(scratch, `tree-${g}`);
    await mkdir(tree, { recursive: true });
    for (const deb of debs.filter((_, i) => i % groups === g)) execFileSync("dpkg-deb", ["-x", path.join(pool, deb), tree]);
    execFileSync("umoci", ["insert", "--image", `${layout}:bench`, tree, "/"]);
    await rm(tree, { recursive: true, force: true });
  }
  return { dir: layout, tag: "bench" };
}

/** Imports every blob of an OCI layout into a blob store; returns the tagged manifest's digest. */
async function importLayout(dir, tag, blobs) {
  const index = JSON.parse(await readFile(path.join(dir, "index.json"), "utf8"));
  const manifests = index.manifests ?? [];
  const entry = tag ? manifests.find((m) => m.annotations?.["org.opencontainers.image.ref.name"] === tag) : manifests[0];
  if (!entry) throw new Error(`no manifest${tag ? ` tagged ${tag}` : ""} in ${dir}/index.json`);
  const blobDir = path.join(dir, "blobs/sha256");
  for (const hex of readdirSync(blobDir)) {
    const writer = ingestBlob(blobs);
    try {
      await pipeline(createReadStream(path.join(blobDir, hex)), writer, { end: true });
      await writer.commit({ digest: `sha256:${hex}` });
    } finally {
      await settle(writer);
    }
  }
  return entry.digest;
}

/** Debian's docker-registry on a free loopback port, storage in a fresh directory. */
async function startRegistry() {
  const dir = await mkdtemp(path.join(scratch, "registry-"));
  const config = path.join(dir, "config.yml");
  await writeFile(
    config,
    [
      "version: 0.1",
      "log:",
      "  level: info",
      "  accesslog:",
      "    disabled: true",
      "storage:",
      "  filesystem:",
      `    rootdirectory: ${dir}/data`,
      "http:",
      "  addr: 127.0.0.1:0",
      `  secret: ${randomUUID()}`,
      "",
    ].join("\n"),
  );
  const child = spawn("/usr/bin/docker-registry", ["serve", config], { stdio: ["ignore", "pipe", "pipe"] });
  let log = "";
  const port = await new Promise((resolve, reject) => {
    const onData = (d) => {
      log += d;
      const m = /listening on 127\.0\.0\.1:(\d+)/.exec(log);
      if (m) resolve(Number(m[1]));
    };
    child.stdout.on("data", onData);
    child.stderr.on("data", onData);
    child.once("exit", (code) => reject(new Error(`docker-registry exited with ${code}: ${log}`)));
  });
  const exited = new Promise((resolve) => child.once("exit", resolve));
  return {
    host: `127.0.0.1:${port}`,
    async stop() {
      child.kill("SIGTERM");
      await exited;
      await rm(dir, { recursive: true, force: true });
    },
  };
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const ms = (t) => `${t.toFixed(0)} ms`;

try {
  let layoutArg = args[0];
  let layout;
  if (layoutArg) {
    const m = /^(.*?)(?::([^:/]+))?$/.exec(layoutArg);
    layout = { dir: path.resolve(m[1]), tag: m[2] };
  } else {
    process.stdout.write("no layout given: making one from the local mirror... ");
    layout = await makeLayout();
    console.log("done");
  }
  const blobs = BlobStore.open(path.join(scratch, "blobs"));
  const digest = await importLayout(layout.dir, layout.tag, blobs);
  const image = await loadImage(blobs, digest, { verifyLayers: false });
  const total = image.config.length + image.layers.reduce((n, l) => n + l.size, 0);
  console.log(`image: ${image.layers.length} layers, ${(total / 1e6).toFixed(1)} MB; ${runs} runs; client options ${JSON.stringify(clientOptions)}`);
  const skopeoRef = layout.tag ? `oci:${layout.dir}:${layout.tag}` : `oci:${layout.dir}`;

  const kiln = [];
  const skopeo = [];
  for (let i = 0; i < runs; i++) {
    for (const tool of i % 2 === 0 ? ["kiln", "skopeo"] : ["skopeo", "kiln"]) {
      const registry = await startRegistry();
      try {
        const t0 = performance.now();
        if (tool === "kiln") {
          await pushImage(image, blobs, { registry: `http://${registry.host}`, repository: "bench/kiln", tag: "v1" }, {}, { clientOptions });
          kiln.push(performance.now() - t0);
        } else {
          await run("skopeo", ["copy", "--quiet", "--dest-tls-verify=false", skopeoRef, `docker://${registry.host}/bench/skopeo:v1`]);
          skopeo.push(performance.now() - t0);
        }
      } finally {
        await registry.stop();
      }
    }
  }
  console.log(`push to a fresh repository   kiln ${ms(median(kiln))}   skopeo copy ${ms(median(skopeo))}   ratio ${(median(kiln) / median(skopeo)).toFixed(2)}x (goal <= 1.0x)`);
  console.log(`  kiln runs:   ${kiln.map(ms).join(", ")}`);
  console.log(`  skopeo runs: ${skopeo.map(ms).join(", ")}`);

  const registry = await startRegistry();
  try {
    const target = { registry: `http://${registry.host}`, repository: "bench/kiln" };
    await pushImage(image, blobs, { ...target, tag: "v1" }, {}, { clientOptions });
    const times = [];
    let uploaded = 0;
    for (let i = 0; i < runs; i++) {
      const t0 = performance.now();
      const r = await pushImage(image, blobs, { ...target, tag: `again-${i}` }, {}, { clientOptions });
      times.push(performance.now() - t0);
      uploaded += r.bytesUploaded;
    }
    console.log(`re-publish under a new tag   kiln ${ms(median(times))} (goal < 500 ms), layer bytes uploaded: ${uploaded} (goal 0)`);
  } finally {
    await registry.stop();
  }
} finally {
  await rm(scratch, { recursive: true, force: true });
}
