/**
 * The README's walk-through ("Using Kiln"), run as a new user runs it: every fenced `sh` block of
 * the section, in order, in one shell working directory inside the clone (so `npx kiln` is this
 * Kiln), against `bin/kiln.js serve` started with the README's own root password, a data
 * directory in a temp dir, the suite's local mirror served on loopback (the server's kiln.yaml
 * points at it) and a real `docker-registry` for the publish step. Then the API section's curl
 * flow (`<!-- readme-test: api-flow -->`) and its publication bodies, on the same server, and the
 * TypeScript example (type-checked against the package's own types, then run), and the
 * examples of "Building images without a server" (with `$KILN_CONFIG` naming the local mirror,
 * and the `./app_1.0_all.deb` they name made here: the reader's own package).
 *
 * The commands run as written; only what the README itself leaves to the reader's environment is
 * set here: `$KILN_URL`, `$REGISTRY_URL`, `$REGISTRY_PASSWORD`, `$KILN_ADMIN_PASSWORD`, and
 * `$XDG_CONFIG_HOME` (so that the saved profile lands in the temp dir). A block preceded by
 * `<!-- readme-test: ... -->` is not run (the server start, the Docker commands). A comment line
 * that follows a command (`# Created bundle 1 ...`) is output the block must print, up to its
 * first " (" (sizes and digests vary); example hosts read as the test's registry.
 */
import { execFile } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildDeb } from "../fixtures/debs.js";
import { basic, kilnYaml } from "../helpers/api.js";
import { MIRROR_DIR, ROOT } from "../helpers/global-setup.js";
import { startKiln, type KilnProcess } from "../helpers/kiln-process.js";
import { MirrorServer } from "../helpers/mirror-server.js";
import { run, startRegistry, type TestRegistry } from "../helpers/registry.js";

const README = readFileSync(path.join(ROOT, "README.md"), "utf8");
const REGISTRY_PASSWORD = "registry-secret";
const LONG = 600_000;

interface Block {
  /** The line of the opening fence (1-based), for messages. */
  line: number;
  code: string;
  /** The `readme-test:` marker before the block, if any. */
  marker?: string;
}

/** The fenced blocks (`sh` unless told) of the README between a heading and the next heading of its level. */
function shBlocks(heading: string, lang = "sh"): Block[] {
  const lines = README.split("\n");
  const start = lines.indexOf(heading);
  if (start < 0) throw new Error(`no "${heading}" in README.md`);
  const level = /^#+ /.exec(heading)![0];
  const blocks: Block[] = [];
  let marker: string | undefined;
  for (let i = start + 1; i < lines.length; i++) {
    const line = lines[i]!;
    if (line.startsWith(level)) break;
    const m = /^<!-- readme-test: (.*?) -->$/.exec(line);
    if (m) marker = m[1];
    else if (line === `\`\`\`${lang}`) {
      const end = lines.indexOf("```", i + 1);
      blocks.push({ line: i + 1, code: lines.slice(i + 1, end).join("\n"), ...(marker !== undefined ? { marker } : {}) });
      marker = undefined;
      i = end;
    } else if (line.startsWith("```")) {
      i = lines.indexOf("```", i + 1);
      marker = undefined;
    } else if (line.trim() !== "") marker = undefined;
  }
  return blocks;
}

/** Output a block promises: comment lines right after a command (not inside a heredoc). */
function promisedOutput(code: string): string[] {
  const out: string[] = [];
  let heredoc: string | undefined;
  for (const line of code.split("\n")) {
    if (heredoc !== undefined) {
      if (line === heredoc) heredoc = undefined;
      continue;
    }
    const h = /<<-?'?(\w+)'?/.exec(line);
    if (h) heredoc = h[1];
    const c = /^# (.*)$/.exec(line);
    if (c) out.push(c[1]!.split(" (")[0]!);
  }
  return out;
}

interface Ran {
  code: number | null;
  output: string;
}

/** Runs a block with bash (stopping at the first failing command), without blocking this process (the mirror is served from here). */
function runBlock(code: string, cwd: string, env: NodeJS.ProcessEnv): Promise<Ran> {
  return new Promise((resolve) => {
    execFile("bash", ["-euo", "pipefail", "-c", code], { cwd, env, encoding: "utf8", maxBuffer: 16 << 20, timeout: LONG }, (err, stdout, stderr) =>
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, output: `${stdout}${stderr}` }),
    );
  });
}

let mirror: MirrorServer;
let registry: TestRegistry;
let server: KilnProcess | undefined;
let work: string;
let env: NodeJS.ProcessEnv;

/** `bin/kiln.js serve` on a free loopback port, as `npm start` runs it, with the loopback mirror. */
async function serve(adminPassword: string): Promise<KilnProcess> {
  const dir = path.join(work, "server");
  mkdirSync(dir);
  writeFileSync(path.join(dir, "kiln.yaml"), kilnYaml(mirror.url));
  return startKiln({
    KILN_HOST: "127.0.0.1",
    KILN_DATA_DIR: path.join(dir, "data"),
    KILN_CONFIG: path.join(dir, "kiln.yaml"),
    KILN_ADMIN_PASSWORD: adminPassword,
    KILN_PUBLISH_ALLOW: "127.0.0.1",
  });
}

const using = shBlocks("## Using Kiln");

beforeAll(async () => {
  // Inside the clone, as the README's reader is: `npx kiln` resolves to this package.
  mkdirSync(path.join(ROOT, ".cache"), { recursive: true });
  work = mkdtempSync(path.join(ROOT, ".cache", "readme-walkthrough-"));
  mirror = await MirrorServer.start(MIRROR_DIR);
  registry = await startRegistry({ auth: "htpasswd", users: { alice: REGISTRY_PASSWORD } });
  const serverBlock = using.find((b) => b.marker?.startsWith("server"));
  const adminPassword = /KILN_ADMIN_PASSWORD='([^']+)'/.exec(serverBlock?.code ?? "")?.[1];
  if (!adminPassword) throw new Error("the walk-through's server block sets no KILN_ADMIN_PASSWORD");
  server = await serve(adminPassword);
  const url = server.url;
  const base = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("KILN_")));
  env = {
    ...base,
    KILN_URL: url,
    KILN_ADMIN_PASSWORD: adminPassword,
    REGISTRY_URL: registry.url,
    REGISTRY_PASSWORD,
    XDG_CONFIG_HOME: path.join(work, "config"),
    // `npx kiln` must find this package; never the registry's "kiln".
    npm_config_offline: "true",
    npm_config_update_notifier: "false",
    CI: "true",
  };
}, 120_000);

afterAll(async () => {
  await server?.stop();
  await registry?.stop();
  await mirror?.close();
  // The walk-through ran as root over an unpacked image: its files may be read-only.
  if (work) rmSync(work, { recursive: true, force: true });
});

/** Runs blocks in order in `cwd`, each expected to succeed and to print what it promises. */
async function runAll(blocks: Block[], cwd: string): Promise<string> {
  mkdirSync(cwd, { recursive: true });
  let all = "";
  for (const block of blocks) {
    const ran = await runBlock(block.code, cwd, env);
    const where = `README.md:${block.line}\n${block.code}\n--- output ---\n${ran.output}\n--- server ---\n${server!.output()}`;
    expect(ran.code, where).toBe(0);
    for (const promised of promisedOutput(block.code)) {
      const expected = promised.replaceAll("https://registry.example.com", registry.url).replaceAll("registry.example.com", registry.host);
      expect(ran.output, where).toContain(expected);
    }
    all += ran.output;
  }
  return all;
}

describe("the README", () => {
  it("has a walk-through to run, and marks what it does not run", () => {
    expect(using.length).toBeGreaterThan(5);
    expect(using.filter((b) => b.marker === undefined).length).toBeGreaterThan(5);
  });

  it(
    "walk-through runs as written: from a new user to an image downloaded, run and published",
    async () => {
      const output = await runAll(
        using.filter((b) => b.marker === undefined),
        path.join(work, "walk"),
      );
      // The image ran (step 5, without Docker) and is in the registry (step 6).
      expect(output).toContain("Hello from a Kiln image");
      const manifest = await fetch(`${registry.url}/v2/team/hello/manifests/1.0`, {
        headers: { authorization: basic("alice", REGISTRY_PASSWORD), accept: "application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json" },
      });
      expect(manifest.status).toBe(200);
    },
    LONG,
  );

  it(
    "kiln build examples run as written, and name the images they do not tag",
    async () => {
      const blocks = shBlocks("## Building images without a server");
      const cwd = path.join(work, "build");
      mkdirSync(cwd);
      buildDeb({ name: "app", version: "1.0", arch: "all", files: [{ path: "usr/share/doc/app/README", content: "an app\n" }] }, cwd);
      const config = path.join(work, "build-kiln.yaml");
      writeFileSync(config, kilnYaml());
      const saved = env;
      env = { ...env, KILN_CONFIG: config };
      try {
        await runAll(blocks.filter((b) => b.marker === undefined), cwd);
      } finally {
        env = saved;
      }
      const index = JSON.parse(readFileSync(path.join(cwd, "out/index.json"), "utf8")) as { manifests: Array<{ annotations?: Record<string, string> }> };
      expect(index.manifests.map((m) => m.annotations?.["org.opencontainers.image.ref.name"]).sort()).toEqual(["app:latest", "minbase:12", "python3:latest"]);
      const { stdout } = await run("tar", ["-xOzf", path.join(cwd, "jq.tar.gz"), "manifest.json"]);
      expect((JSON.parse(stdout) as Array<{ RepoTags: string[] }>).map((m) => m.RepoTags)).toEqual([["jq:latest"]]);
    },
    LONG,
  );

  it(
    "TypeScript example type-checks and runs",
    async () => {
      const [example] = shBlocks("## Using Kiln", "ts");
      const cwd = path.join(work, "walk");
      const file = path.join(cwd, "example.ts");
      writeFileSync(file, example!.code);
      // `import ... from "kiln"` is this package (a self-reference from inside the clone).
      await run(process.execPath, [path.join(ROOT, "node_modules/typescript/bin/tsc"), "--noEmit", "--strict", "--module", "nodenext", "--target", "es2022", "--types", "node", file], { cwd });
      await run(path.join(ROOT, "node_modules/.bin/esbuild"), [file, "--format=esm", `--outfile=${path.join(cwd, "example.mjs")}`], { cwd });
      const password = /"loginName":"alice"[^}]*"password":"([^"]+)"/.exec(using.map((b) => b.code).join("\n"))![1]!;
      const ran = await run(process.execPath, ["example.mjs"], { cwd, env: { ...env, KILN_PASSWORD: password } });
      expect(ran.stdout).toMatch(/^100 /m);
      const { stdout: image } = await run("tar", ["-tzf", path.join(cwd, "hello-image.tar.gz")]);
      expect(image.split("\n")).toContain("manifest.json");
    },
    LONG,
  );

  it(
    "API section's curl flow runs as written, and its publication bodies are accepted",
    async () => {
      const flow = shBlocks("## The API").filter((b) => b.marker === "api-flow");
      expect(flow).toHaveLength(1);
      const cwd = path.join(work, "api");
      await runAll(flow, cwd);
      // The software archive is still the one uploaded; the image was downloaded beside it.
      const { stdout: listing } = await run("tar", ["-tzf", path.join(cwd, "hello.tar.gz")]);
      expect(listing.split("\n")).toContain("bin/hello");
      const { stdout: image } = await run("tar", ["-tzf", path.join(cwd, "hello-image.tar.gz")]);
      expect(image.split("\n")).toContain("manifest.json");

      // The account and publication bodies the section gives, with this test's registry.
      const section = README.slice(README.indexOf("## The API"));
      const accountBody = JSON.parse(/`(\{"xsiType":"CredAccountDocker"[^`]*\})`/.exec(section)![1]!) as Record<string, unknown>;
      const publishBody = JSON.parse(/`(\{"xsiType":"PublishImageDocker"[^`]*\})`/.exec(section)![1]!) as { credAccount: { uri: string } };
      const bob = { authorization: basic("bob", "bob-secret-pw"), accept: "application/json", "content-type": "application/json" };
      const api = `${env.KILN_URL}/api/users/bob`;
      const account = await fetch(`${api}/accounts`, { method: "POST", headers: bob, body: JSON.stringify({ ...accountBody, endpointUrl: registry.url, login: "alice", password: REGISTRY_PASSWORD }) });
      expect(account.status, await account.clone().text()).toBe(201);
      publishBody.credAccount.uri = ((await account.json()) as { uri: string }).uri;
      const images = (await (await fetch(`${api}/images`, { headers: bob })).json()) as { images: Array<{ uri: string }> };
      const imageUri = images.images[0]!.uri;
      const published = await fetch(`${env.KILN_URL}/api/${imageUri}/pimages`, { method: "POST", headers: bob, body: JSON.stringify(publishBody) });
      expect(published.status, await published.clone().text()).toBe(201);
      const { statusUri } = (await published.json()) as { statusUri: string };
      for (;;) {
        const s = (await (await fetch(`${env.KILN_URL}/api/${statusUri}`, { headers: bob })).json()) as { complete: boolean; error: boolean; cancelled: boolean; errorMessage?: string };
        if (s.complete || s.error || s.cancelled) {
          expect(s.complete, JSON.stringify(s)).toBe(true);
          break;
        }
        await new Promise((r) => setTimeout(r, 200));
      }
    },
    LONG,
  );
});
