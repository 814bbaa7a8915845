/**
 * The shape of the study behind the fix-ups: what Kiln knows about maintainer scripts, as data
 * the interpreter (fixups/script/) consults and the fidelity harness (bench/fidelity/) reads.
 *
 * Three kinds of knowledge, from the most general to the most specific:
 * - {@link ProgramRule}: how a program is treated wherever a script calls it
 *   (`deb-systemd-helper` is not needed in an image; `py3compile` byte-compiles, which Kiln
 *   does not reproduce). Shared by every release (common.ts) unless a release adds its own.
 * - {@link CommandClaim}: a command of one package's script that a dedicated fix-up replaces
 *   (`update-ca-certificates` in ca-certificates' postinst) or that needs its own verdict.
 * - {@link ScriptStudy}: a whole script the interpreter does not run, because a dedicated fix-up
 *   reproduces all of it (base-files' postinst) or it does nothing an image needs. Pinned to the
 *   sha256 of the script text it was made for: another version of the script is interpreted
 *   (and what the study does not know is reported), never assumed to be the same.
 *
 * Every verdict carries, for the fidelity harness, the paths its effect leaves in a real
 * installation (`paths`, globs relative to the root): a difference between Kiln's tree and the
 * reference at such a path is explained by an "unreproduced" entry of the build's report.
 */
import type { Outcome } from "../script/interpret.js";

export type { Outcome } from "../script/interpret.js";

/** The scripts (and trigger runs) a report names. */
export type ScriptName = "preinst" | "postinst" | "config" | "triggers" | "prerm" | "postrm";

export interface Verdict {
  outcome: Outcome;
  /** What the effect is, for the report (a fixed text: the harness matches it). */
  effect: string;
  /** The fix-up that reproduces it, for "emulated". */
  by?: string;
  /** What a real installation leaves, as globs relative to the root (`var/cache/fontconfig/**`). */
  paths?: readonly string[];
  /** The exit status the script sees (default 0). */
  status?: number;
  /** What the command prints, as the script reads it (default: nothing Kiln knows). */
  output?: string;
}

export interface ProgramRule extends Verdict {
  /** The program name (without its directory) or a pattern for it. */
  program: string | RegExp;
  /** A pattern the arguments (joined by spaces) must match. */
  args?: RegExp;
}

export interface CommandClaim extends ProgramRule {
  package: string;
  /** Only in this script (default: any). */
  script?: ScriptName;
}

export interface ScriptStudy {
  package: string;
  script: ScriptName;
  /** sha256 (hex, first 16 characters) of the script texts this study was made for. */
  sha256: readonly string[];
  effects: readonly Verdict[];
}

/** Everything known for one release. */
export interface Study {
  release: string;
  programs: readonly ProgramRule[];
  claims: readonly CommandClaim[];
  scripts: readonly ScriptStudy[];
}
