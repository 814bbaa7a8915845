/**
 * The one clock of a build: every tar mtime, the config's `created` and its history use it, so
 * that rebuilding the same inputs gives the same bytes (reproducible-builds.org's
 * `SOURCE_DATE_EPOCH` convention).
 */
import { fail } from "../domain/errors.js";

/**
 * `SOURCE_DATE_EPOCH` when set (decimal seconds since the epoch; anything else is an error, as
 * the specification asks, rather than a silently non-reproducible build), else the newest of
 * `candidates` (the packages' dates), else the epoch itself.
 */
export function buildClock(options: { sourceDateEpoch?: string | undefined; candidates?: Iterable<Date> }): Date {
  const raw = options.sourceDateEpoch;
  if (raw !== undefined && raw !== "") {
    if (!/^[0-9]{1,11}$/.test(raw)) fail("invalidField", `SOURCE_DATE_EPOCH "${raw}" is not a number of seconds`);
    const seconds = Number(raw);
    if (seconds > 0o77777777777) fail("invalidField", `SOURCE_DATE_EPOCH ${raw} is beyond what a tar header can hold`);
    return new Date(seconds * 1000);
  }
  let newest = 0;
  for (const d of options.candidates ?? []) {
    const t = d.getTime();
    if (Number.isFinite(t) && t > newest) newest = t;
  }
  // Whole seconds: tar mtimes and the config's `created` have no finer resolution.
  return new Date(Math.floor(newest / 1000) * 1000);
}
