/** A1111 prompt syntax: attention weights, prompt editing, AND, long-prompt chunks, emphasis. */

export { parsePromptAttention, type WeightedText } from "./attention.js";
export { promptSchedules, type ScheduledText } from "./schedules.js";
export { multicondSubprompts } from "./multicond.js";
export { tokenizeWeighted, type PromptTokenizer, type PromptChunk, type ChunkFix, type ChunkOptions, type EmbeddingMatch, type WeightedTokens } from "./chunks.js";
export { applyEmphasis } from "./emphasis.js";
