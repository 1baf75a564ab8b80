#!/usr/bin/env node
/** The `sdts` command line: one lazily loaded file per subcommand. Errors print one line: exit 2 for usage, 1 at run time. */
import { defineCommand, runCommand, runMain } from "citty";
import { InputError, SdtsError } from "../errors.js";
import { VERSION } from "../version.js";

const main = defineCommand({
  meta: { name: "sdts", version: VERSION, description: "Stable Diffusion in TypeScript" },
  subCommands: {
    generate: () => import("./commands/generate.js").then((m) => m.default),
    img2img: () => import("./commands/img2img.js").then((m) => m.default),
    inpaint: () => import("./commands/inpaint.js").then((m) => m.default),
    info: () => import("./commands/info.js").then((m) => m.default),
    serve: () => import("./commands/serve.js").then((m) => m.default),
    dataset: () => import("./commands/dataset.js").then((m) => m.default),
    train: () => import("./commands/train.js").then((m) => m.default),
  },
});

async function cli(): Promise<void> {
  const rawArgs = process.argv.slice(2);
  const wantsHelp = rawArgs.length === 0 || rawArgs.some((a) => a === "--help" || a === "-h" || a === "--version" || a === "-v");
  if (wantsHelp) return runMain(main);
  try {
    await runCommand(main, { rawArgs });
  } catch (e) {
    // citty reports bad usage (unknown command, missing argument) as a CLIError.
    const usage = e instanceof InputError || (e instanceof Error && e.name === "CLIError");
    if (e instanceof SdtsError || usage) {
      process.stderr.write(`sdts: ${(e as Error).message}\n`);
      process.exit(usage ? 2 : 1);
    }
    throw e;
  }
}

void cli();
