#!/usr/bin/env node
/** The `sdts` command line: one lazily loaded file per subcommand. */
import { defineCommand, runMain } from "citty";
import { SdtsError } from "../errors.js";
import { VERSION } from "../version.js";

const main = defineCommand({
  meta: { name: "sdts", version: VERSION, description: "Stable Diffusion in TypeScript" },
  subCommands: {
    info: () => import("./commands/info.js").then((m) => m.default),
  },
});

process.on("uncaughtException", (e) => {
  // One line for errors sdts raised on purpose; a stack only for bugs.
  if (e instanceof SdtsError) {
    process.stderr.write(`sdts: ${e.message}\n`);
    process.exit(1);
  }
  throw e;
});

void runMain(main);
