/**
 * `kiln login` checks credentials against the server and saves them as a profile; `kiln logout`
 * forgets one. The password or API secret comes from standard input (or `KILN_PASSWORD`), never
 * from the command line.
 */
import type { Command } from "commander";
import { KilnApiError, KilnClient } from "../sdk/index.js";
import { debugEnabled, examples } from "./context.js";
import { UsageError } from "./errors.js";
import { printJson, say } from "./output.js";
import { configPath, profileName, removeProfile, saveProfile, type Profile } from "./profiles.js";
import { readSecret } from "./secret-input.js";

interface LoginOptions {
  url?: string;
  user?: string;
  passwordStdin?: boolean;
  apiKey?: string;
  secretStdin?: boolean;
  profile?: string;
  json?: boolean;
}

export function registerLogin(program: Command): void {
  program
    .command("login")
    .description("check credentials against a Kiln server and save them as a profile")
    .option("--url <url>", "the server, e.g. http://127.0.0.1:8080 (default: $KILN_URL)")
    .option("--user <name>", "your login (default: $KILN_USER)")
    .option("--password-stdin", "read the password from standard input (or set KILN_PASSWORD)")
    .option("--api-key <public>", "log in with an API key pair: its public key...")
    .option("--secret-stdin", "...and its secret, read from standard input")
    .option("--profile <name>", "save as this profile (default: $KILN_PROFILE, else \"default\")")
    .option("--json", "print the user as JSON")
    .addHelpText(
      "after",
      `
The profile is saved in $XDG_CONFIG_HOME/kiln/config.json (else ~/.config/kiln/config.json),
readable by you only (mode 0600): it holds the password or the API secret.

Examples:
  printf '%s' "$KILN_PASSWORD" | kiln login --url http://127.0.0.1:8080 --user alice --password-stdin
  printf '%s' "$SECRET" | kiln login --url https://kiln.example.com --user ci --api-key PUBLIC --secret-stdin --profile ci`,
    )
    .action(async (opts: LoginOptions, cmd: Command) => {
      const url = opts.url ?? process.env.KILN_URL;
      const user = opts.user ?? process.env.KILN_USER;
      if (!url) throw new UsageError("give the server with --url URL (or set KILN_URL)");
      if (!user) throw new UsageError("give your login with --user NAME (or set KILN_USER)");
      if (opts.passwordStdin && opts.apiKey) throw new UsageError("choose --password-stdin or --api-key, not both");
      if (opts.secretStdin && !opts.apiKey) throw new UsageError("--secret-stdin goes with --api-key PUBLIC");
      let profile: Profile;
      if (opts.apiKey) {
        if (!opts.secretStdin) throw new UsageError("give the API key's secret on standard input with --secret-stdin");
        profile = { url, user, apiKey: opts.apiKey, secret: await readSecret("API secret") };
      } else {
        const password = opts.passwordStdin ? await readSecret("password") : process.env.KILN_PASSWORD;
        if (!password) throw new UsageError("give the password on standard input with --password-stdin (or in KILN_PASSWORD), or an API key with --api-key PUBLIC --secret-stdin");
        profile = { url, user, password };
      }
      const client = new KilnClient({
        url,
        user,
        ...(profile.apiKey ? { apiKey: { publicKey: profile.apiKey, secret: profile.secret! } } : { password: profile.password! }),
        userAgent: "kiln-cli",
        ...(debugEnabled(cmd) ? { onResponse: (e) => process.stderr.write(`debug: ${e.method} ${e.url} -> ${e.status} (${e.ms} ms)\n`) } : {}),
      });
      let me;
      try {
        me = await client.users.get();
      } catch (err) {
        if (err instanceof KilnApiError && err.status === 401) throw new Error(`login failed: ${err.message}`);
        throw err;
      } finally {
        client.close();
      }
      // Saved as the API base the server answered on, so later commands need not guess.
      const name = profileName(opts.profile);
      const file = await saveProfile(name, { ...profile, url: client.transport.apiBase.href.replace(/\/api$/, "") });
      if (opts.json) return printJson(me);
      say(`Logged in to ${url} as ${me.loginName ?? user}; saved as profile "${name}" in ${file}`);
    });

  program
    .command("logout")
    .description("forget a saved profile")
    .option("--profile <name>", "the profile to forget (default: $KILN_PROFILE, else \"default\")")
    .addHelpText("after", examples("kiln logout", "kiln logout --profile ci"))
    .action(async (opts: { profile?: string }) => {
      const name = profileName(opts.profile);
      if (!(await removeProfile(name))) throw new UsageError(`no profile "${name}" in ${configPath()}`);
      say(`Forgot profile "${name}"`);
    });
}
