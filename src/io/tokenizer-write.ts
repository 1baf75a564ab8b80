/** Writes a CLIP tokenizer folder (transformers layout: vocab.json, merges.txt, tokenizer_config.json, special_tokens_map.json). */
import { join } from "node:path";
import { ensureDir, writeFileAtomic, writeJsonFile } from "./run-files.js";

/** Writes the folder; `maxLength` is the padded length `encode` produces (CLIP: 77). */
export async function writeTokenizerFolder(dir: string, vocab: ReadonlyMap<string, number>, merges: readonly string[], maxLength: number): Promise<void> {
  await ensureDir(dir);
  await writeJsonFile(join(dir, "vocab.json"), Object.fromEntries([...vocab].sort((a, b) => a[1] - b[1])));
  // transformers skips the first line of merges.txt (a version comment).
  await writeFileAtomic(join(dir, "merges.txt"), `#version: 0.2\n${merges.join("\n")}\n`);
  const special = { bos_token: "<|startoftext|>", eos_token: "<|endoftext|>", unk_token: "<|endoftext|>", pad_token: "<|endoftext|>" };
  await writeJsonFile(join(dir, "special_tokens_map.json"), special);
  await writeJsonFile(join(dir, "tokenizer_config.json"), { tokenizer_class: "CLIPTokenizer", model_max_length: maxLength, do_lower_case: true, ...special });
}
