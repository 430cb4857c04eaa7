// Helpers shared by the command-line tools.

import { realpathSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

/** True when the module at `moduleUrl` is the program being run (not imported by a test). */
export function isMain(moduleUrl: string): boolean {
  const entry = process.argv[1];
  if (entry === undefined) return false;
  try {
    return realpathSync(entry) === realpathSync(fileURLToPath(moduleUrl));
  } catch {
    return false;
  }
}

/** A bad command line: the tools print its message and their usage, and exit 2. */
export class UsageError extends Error {}

type OptionSpec = Record<string, { type: "string" | "boolean"; short?: string }>;

/**
 * The tools' options (no positional arguments): their values, or a UsageError whose message is
 * parseArgs's first line (it explains some errors over several lines; the first says it all).
 */
export function parseOptions(
  argv: readonly string[],
  options: OptionSpec,
): Record<string, string | boolean | undefined> {
  try {
    return parseArgs({ args: [...argv], strict: true, allowPositionals: false, options }).values;
  } catch (e) {
    throw new UsageError((e as Error).message.split("\n")[0]!);
  }
}

/**
 * Stops a run (`abort`) when its output is gone (`… | head` closed the pipe): without a listener
 * the EPIPE would be an uncaught error that ends this process and leaves its children running.
 * The listener stays for the process's life: every later write fails the same way.
 */
export function stopWhenOutputGone(tool: string, abort: () => void): void {
  let said = false;
  process.stdout.on("error", (err: NodeJS.ErrnoException) => {
    if (said) return;
    said = true;
    process.stderr.write(`${tool}: output closed (${err.code ?? err.message}): stopping\n`);
    abort();
  });
}
