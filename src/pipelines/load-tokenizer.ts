/** Builds a ClipTokenizer from files on disk, or from the CLIP vocabulary shipped with sdts. */

import { CheckpointError, ConfigError } from "../errors.js";
import { defaultTokenizerPath, loadTokenizerFiles } from "../io/tokenizer-files.js";
import { ClipTokenizer } from "../models/clip/tokenizer.js";

/**
 * Loads a tokenizer folder, model folder or bpe_simple_vocab_16e6.txt.gz (see
 * io/tokenizer-files.ts); with no path, the shipped CLIP vocabulary (SD1.x settings).
 */
export async function loadTokenizer(pathOrFolder?: string, opts: { readonly pad?: string } = {}): Promise<ClipTokenizer> {
  const files = await loadTokenizerFiles(pathOrFolder ?? defaultTokenizerPath());
  try {
    // `pad` stands in for a tokenizer config the files lack (SD 2.x single files pad with "!").
    return new ClipTokenizer(opts.pad === undefined ? files : { ...files, pad: opts.pad });
  } catch (e) {
    if (e instanceof ConfigError) throw new CheckpointError(`tokenizer files in ${files.source}: ${e.message}`);
    throw e;
  }
}
