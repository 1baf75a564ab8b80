/** The complete rule table: one entry per op, checked for completeness by the type. */
import type { Op } from "../op.js";
import type { Rule } from "../rule.js";
import { ATTENTION_RULES } from "./attention.js";
import { ELEMENTWISE_RULES } from "./elementwise.js";
import { LINALG_RULES } from "./linalg.js";
import { REDUCE_RULES } from "./reduce.js";
import { SHAPE_RULES } from "./shape.js";

/** Inference, lowering, evaluation and VJP of every op. */
export const RULES: { readonly [K in Op]: Rule<K> } = {
  ...ELEMENTWISE_RULES,
  ...LINALG_RULES,
  ...SHAPE_RULES,
  ...REDUCE_RULES,
  ...ATTENTION_RULES,
};
