/**
 * Where `kiln` finds its server and credentials: profiles saved by `kiln login` in
 * `$XDG_CONFIG_HOME/kiln/config.json` (else `~/.config/kiln/config.json`), written with mode
 * 0600 because they hold a password or an API secret, and overridden field by field by
 * `KILN_URL`, `KILN_USER` and `KILN_PASSWORD` (so CI needs no file at all).
 */
import { chmod, mkdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import type { KilnClientOptions } from "../sdk/index.js";
import { UsageError } from "./errors.js";

/** One saved server and identity. */
export interface Profile {
  url: string;
  user: string;
  /** HTTP Basic password. */
  password?: string;
  /** API key pair (instead of a password). */
  apiKey?: string;
  secret?: string;
}

/** The file's shape. */
export interface ConfigFile {
  profiles: Record<string, Profile>;
}

export const DEFAULT_PROFILE = "default";

export function configDir(env: NodeJS.ProcessEnv = process.env): string {
  const xdg = env.XDG_CONFIG_HOME;
  return path.join(xdg && path.isAbsolute(xdg) ? xdg : path.join(os.homedir(), ".config"), "kiln");
}

export function configPath(env: NodeJS.ProcessEnv = process.env): string {
  return path.join(configDir(env), "config.json");
}

export async function readConfig(env: NodeJS.ProcessEnv = process.env): Promise<ConfigFile> {
  const file = configPath(env);
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return { profiles: {} };
    throw new Error(`cannot read ${file}: ${(err as Error).message}`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new Error(`${file} is not valid JSON (${(err as Error).message}): fix it or remove it and run kiln login again`);
  }
  const profiles = (parsed as { profiles?: unknown } | null)?.profiles;
  if (!profiles || typeof profiles !== "object") return { profiles: {} };
  return { profiles: profiles as Record<string, Profile> };
}

/** Writes the whole file: temp file with mode 0600, then rename, so it is never half-written or readable by others. */
async function writeConfig(config: ConfigFile, env: NodeJS.ProcessEnv): Promise<string> {
  const dir = configDir(env);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const file = configPath(env);
  const tmp = `${file}.tmp-${process.pid}`;
  try {
    await writeFile(tmp, `${JSON.stringify(config, null, 2)}\n`, { mode: 0o600 });
    await chmod(tmp, 0o600);
    await rename(tmp, file);
  } finally {
    await rm(tmp, { force: true });
  }
  return file;
}

export async function saveProfile(name: string, profile: Profile, env: NodeJS.ProcessEnv = process.env): Promise<string> {
  const config = await readConfig(env);
  config.profiles[name] = profile;
  return writeConfig(config, env);
}

/** Removes a profile; answers whether it existed. */
export async function removeProfile(name: string, env: NodeJS.ProcessEnv = process.env): Promise<boolean> {
  const config = await readConfig(env);
  if (!(name in config.profiles)) return false;
  delete config.profiles[name];
  await writeConfig(config, env);
  return true;
}

/** The profile a command uses: `--profile`, else `KILN_PROFILE`, else "default". */
export function profileName(option: string | undefined, env: NodeJS.ProcessEnv = process.env): string {
  return option || env.KILN_PROFILE || DEFAULT_PROFILE;
}

/** The client options of a profile, with the environment's overrides applied. */
export async function connectionOptions(option: string | undefined, env: NodeJS.ProcessEnv = process.env): Promise<Pick<KilnClientOptions, "url" | "user" | "password" | "apiKey">> {
  const name = profileName(option, env);
  const saved: Partial<Profile> = (await readConfig(env)).profiles[name] ?? {};
  if (option && !saved.url && !env.KILN_URL) throw new UsageError(`no profile "${name}" in ${configPath(env)}: run kiln login --profile ${name} first`);
  const url = env.KILN_URL || saved.url;
  const user = env.KILN_USER || saved.user;
  if (!url || !user) {
    throw new UsageError("no Kiln server configured: run kiln login --url URL --user NAME --password-stdin (or set KILN_URL, KILN_USER and KILN_PASSWORD)");
  }
  if (env.KILN_PASSWORD) return { url, user, password: env.KILN_PASSWORD };
  if (saved.apiKey && saved.secret) return { url, user, apiKey: { publicKey: saved.apiKey, secret: saved.secret } };
  if (saved.password !== undefined) return { url, user, password: saved.password };
  throw new UsageError(`no credentials for ${user} at ${url}: run kiln login, or set KILN_PASSWORD`);
}
