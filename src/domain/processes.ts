/**
 * Whether a process of this machine still runs: temporary files carry their writer's pid, so
 * that what a killed process left can be told from what a live one is writing.
 */
export function processRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: it runs, as another user.
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}
