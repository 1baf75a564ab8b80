/**
 * AUTOMATIC1111 sampler names mapped to diffusers scheduler classes and config overrides, as
 * the diffusers scheduler overview documents (v0.27.2, docs/source/en/api/schedulers/overview.md).
 * Noise follows diffusers (one seeded torch.randn per step), not A1111's Brownian-tree noise
 * for the SDE samplers, so "DPM++ 2M SDE" images match diffusers rather than the web UI.
 */
import { InputError } from "../errors.js";
import { SCHEDULER_CLASSES, SD15_SCHEDULER_SETTINGS, parseSchedulerConfig } from "./config.js";
import type { SchedulerClass, SchedulerConfig } from "./config.js";

/** One entry of A1111's /sdapi/v1/samplers, plus the diffusers class and overrides it maps to. */
export interface SamplerInfo {
  readonly name: string;
  readonly aliases: readonly string[];
  readonly options: Readonly<Record<string, string>>;
  readonly className: SchedulerClass;
  /** snake_case diffusers config overrides. */
  readonly overrides: Readonly<Record<string, unknown>>;
}

const KARRAS = { scheduler: "karras" } as const;
const SECOND = { second_order: "True" } as const;
const DPM2_OPTS = { discard_next_to_last_sigma: "True", ...SECOND } as const;
const DPMPP = { algorithm_type: "dpmsolver++", solver_order: 2 } as const;
const SDE = { algorithm_type: "sde-dpmsolver++", solver_order: 2 } as const;
const K = { use_karras_sigmas: true } as const;

const entry = (
  name: string,
  aliases: string[],
  options: Record<string, string>,
  className: SchedulerClass,
  overrides: Record<string, unknown> = {},
): SamplerInfo => Object.freeze({ name, aliases, options, className, overrides });

/** The samplers sdts offers, in A1111's order and naming. */
export const SAMPLERS: readonly SamplerInfo[] = Object.freeze([
  entry("DPM++ 2M", ["k_dpmpp_2m"], {}, "DPMSolverMultistepScheduler", DPMPP),
  entry("DPM++ 2M Karras", ["k_dpmpp_2m_ka"], KARRAS, "DPMSolverMultistepScheduler", { ...DPMPP, ...K }),
  entry("DPM++ 2M SDE", ["k_dpmpp_2m_sde"], { brownian_noise: "True" }, "DPMSolverMultistepScheduler", SDE),
  entry("DPM++ 2M SDE Karras", ["k_dpmpp_2m_sde_ka"], { ...KARRAS, brownian_noise: "True" }, "DPMSolverMultistepScheduler", { ...SDE, ...K }),
  entry("Euler a", ["k_euler_a", "k_euler_ancestral"], { uses_ensd: "True" }, "EulerAncestralDiscreteScheduler"),
  entry("Euler", ["k_euler"], {}, "EulerDiscreteScheduler"),
  entry("LMS", ["k_lms"], {}, "LMSDiscreteScheduler"),
  entry("LMS Karras", ["k_lms_ka"], KARRAS, "LMSDiscreteScheduler", K),
  entry("Heun", ["k_heun"], SECOND, "HeunDiscreteScheduler"),
  entry("DPM2", ["k_dpm_2"], DPM2_OPTS, "KDPM2DiscreteScheduler"),
  entry("DPM2 Karras", ["k_dpm_2_ka"], { ...KARRAS, ...DPM2_OPTS }, "KDPM2DiscreteScheduler", K),
  entry("DPM2 a", ["k_dpm_2_a"], { ...DPM2_OPTS, uses_ensd: "True" }, "KDPM2AncestralDiscreteScheduler"),
  entry("DPM2 a Karras", ["k_dpm_2_a_ka"], { ...KARRAS, ...DPM2_OPTS, uses_ensd: "True" }, "KDPM2AncestralDiscreteScheduler", K),
  entry("DDIM", [], { default_eta_is_0: "True", uses_ensd: "True" }, "DDIMScheduler", { eta: 0 }),
  entry("PLMS", [], {}, "PNDMScheduler", { skip_prk_steps: true }),
  entry("UniPC", [], {}, "UniPCMultistepScheduler"),
  entry("LCM", ["k_lcm"], {}, "LCMScheduler"),
]);

const norm = (s: string): string => s.trim().toLowerCase();

/**
 * Looks up a sampler by A1111 name or alias (case-insensitive), or by diffusers class name
 * (then with no overrides, e.g. "DDPMScheduler").
 */
export function getScheduler(nameOrClass: string): SamplerInfo {
  const key = norm(nameOrClass);
  const hit = SAMPLERS.find((s) => norm(s.name) === key || s.aliases.some((a) => norm(a) === key));
  if (hit !== undefined) return hit;
  const cls = SCHEDULER_CLASSES.find((c) => norm(c) === key);
  if (cls !== undefined) return entry(cls, [], {}, cls);
  throw new InputError(
    `unknown sampler ${JSON.stringify(nameOrClass)}; use one of ${SAMPLERS.map((s) => s.name).join(", ")} or a diffusers class (${SCHEDULER_CLASSES.join(", ")})`,
  );
}

/**
 * The config of a sampler on a model: the model's scheduler_config.json (default: the SD1.5
 * settings, for single-file checkpoints) with the sampler's class, overrides and class defaults.
 */
export function samplerConfig(
  nameOrClass: string,
  modelSchedulerJson: Readonly<Record<string, unknown>> = SD15_SCHEDULER_SETTINGS,
): SchedulerConfig {
  const s = getScheduler(nameOrClass);
  return parseSchedulerConfig(modelSchedulerJson, { className: s.className, overrides: s.overrides });
}
