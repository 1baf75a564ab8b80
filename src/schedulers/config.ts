/**
 * Scheduler configuration: a diffusers `scheduler_config.json` parsed once into camelCase,
 * with absent keys filled by the chosen class's diffusers 0.27.2 defaults (so a model's
 * PNDM config can drive Euler, as diffusers' `Class.from_config(config, **overrides)` does).
 */
import { ConfigError } from "../errors.js";

/** The diffusers scheduler classes sdts implements. */
export const SCHEDULER_CLASSES = [
  "DDPMScheduler",
  "DDIMScheduler",
  "PNDMScheduler",
  "LMSDiscreteScheduler",
  "EulerDiscreteScheduler",
  "EulerAncestralDiscreteScheduler",
  "HeunDiscreteScheduler",
  "KDPM2DiscreteScheduler",
  "KDPM2AncestralDiscreteScheduler",
  "DPMSolverMultistepScheduler",
  "UniPCMultistepScheduler",
  "LCMScheduler",
] as const;

/** One of the implemented diffusers scheduler class names. */
export type SchedulerClass = (typeof SCHEDULER_CLASSES)[number];

/** What the model predicts: the noise ε, the velocity v = α·ε − σ·x₀, or x₀ itself. */
export type PredictionType = "epsilon" | "v_prediction" | "sample";

/** How inference timesteps are spread over the training range (Lin et al. 2023, Table 2). */
export type TimestepSpacing = "leading" | "trailing" | "linspace";

/** A fully resolved scheduler configuration (every field set). */
export interface SchedulerConfig {
  readonly className: SchedulerClass;
  readonly numTrainTimesteps: number;
  readonly betaStart: number;
  readonly betaEnd: number;
  readonly betaSchedule: "linear" | "scaled_linear" | "squaredcos_cap_v2";
  readonly trainedBetas: readonly number[] | null;
  readonly rescaleBetasZeroSnr: boolean;
  readonly predictionType: PredictionType;
  readonly timestepSpacing: TimestepSpacing;
  readonly stepsOffset: number;
  /** DDIM/PNDM/LCM: use ᾱ = 1 (else ᾱ₀) past the last step. */
  readonly setAlphaToOne: boolean;
  readonly clipSample: boolean;
  readonly clipSampleRange: number;
  /** DDPM: "fixed_small" | "fixed_small_log" | "fixed_large" | "fixed_large_log". */
  readonly varianceType: string | null;
  /** DDIM: η of Song et al. 2021 eq. 16 (a step() argument in diffusers; 0 = deterministic). */
  readonly eta: number;
  readonly skipPrkSteps: boolean;
  readonly useKarrasSigmas: boolean;
  readonly sigmaMin: number | null;
  readonly sigmaMax: number | null;
  readonly interpolationType: "linear" | "log_linear";
  readonly algorithmType: "dpmsolver++" | "sde-dpmsolver++";
  readonly solverOrder: number;
  readonly solverType: "midpoint" | "heun" | "bh1" | "bh2";
  readonly lowerOrderFinal: boolean;
  readonly eulerAtFinal: boolean;
  readonly finalSigmasType: "zero" | "sigma_min";
  readonly lambdaMinClipped: number;
  readonly predictX0: boolean;
  readonly disableCorrector: readonly number[];
  readonly originalInferenceSteps: number;
  readonly timestepScaling: number;
}

type Fields = Omit<SchedulerConfig, "className">;

const COMMON: Fields = {
  numTrainTimesteps: 1000,
  betaStart: 0.0001,
  betaEnd: 0.02,
  betaSchedule: "linear",
  trainedBetas: null,
  rescaleBetasZeroSnr: false,
  predictionType: "epsilon",
  timestepSpacing: "linspace",
  stepsOffset: 0,
  setAlphaToOne: false,
  clipSample: false,
  clipSampleRange: 1,
  varianceType: null,
  eta: 0,
  skipPrkSteps: false,
  useKarrasSigmas: false,
  sigmaMin: null,
  sigmaMax: null,
  interpolationType: "linear",
  algorithmType: "dpmsolver++",
  solverOrder: 2,
  solverType: "midpoint",
  lowerOrderFinal: true,
  eulerAtFinal: false,
  finalSigmasType: "zero",
  lambdaMinClipped: -Infinity,
  predictX0: true,
  disableCorrector: [],
  originalInferenceSteps: 50,
  timestepScaling: 10,
};

const SD_BETAS = { betaStart: 0.00085, betaEnd: 0.012 } as const;

/** Where a class's defaults differ from COMMON (diffusers 0.27.2 `__init__` signatures). */
const CLASS_DEFAULTS: Readonly<Record<SchedulerClass, Partial<Fields>>> = {
  DDPMScheduler: { timestepSpacing: "leading", clipSample: true, varianceType: "fixed_small" },
  DDIMScheduler: { timestepSpacing: "leading", clipSample: true, setAlphaToOne: true },
  PNDMScheduler: { timestepSpacing: "leading" },
  LMSDiscreteScheduler: {},
  EulerDiscreteScheduler: {},
  EulerAncestralDiscreteScheduler: {},
  HeunDiscreteScheduler: SD_BETAS,
  KDPM2DiscreteScheduler: SD_BETAS,
  KDPM2AncestralDiscreteScheduler: SD_BETAS,
  DPMSolverMultistepScheduler: {},
  UniPCMultistepScheduler: { solverType: "bh2" },
  LCMScheduler: {
    ...SD_BETAS,
    betaSchedule: "scaled_linear",
    timestepSpacing: "leading",
    setAlphaToOne: true,
  },
};

/** The SD 1.x/2.x scheduler settings (snake_case, as a real SD1.5 scheduler_config.json has them). */
export const SD15_SCHEDULER_SETTINGS: Readonly<Record<string, unknown>> = Object.freeze({
  num_train_timesteps: 1000,
  beta_start: 0.00085,
  beta_end: 0.012,
  beta_schedule: "scaled_linear",
  steps_offset: 1,
  set_alpha_to_one: false,
  clip_sample: false,
  skip_prk_steps: true,
  trained_betas: null,
});

/** The value kinds a config field may hold, used to check JSON input. */
const KINDS: Readonly<Record<keyof Fields, string>> = {
  numTrainTimesteps: "int", betaStart: "num", betaEnd: "num",
  betaSchedule: "linear|scaled_linear|squaredcos_cap_v2", trainedBetas: "nums?",
  rescaleBetasZeroSnr: "bool", predictionType: "epsilon|v_prediction|sample",
  timestepSpacing: "leading|trailing|linspace", stepsOffset: "int", setAlphaToOne: "bool",
  clipSample: "bool", clipSampleRange: "num", varianceType: "str?", eta: "num",
  skipPrkSteps: "bool", useKarrasSigmas: "bool", sigmaMin: "num?", sigmaMax: "num?",
  interpolationType: "linear|log_linear", algorithmType: "dpmsolver++|sde-dpmsolver++",
  solverOrder: "int", solverType: "midpoint|heun|bh1|bh2", lowerOrderFinal: "bool",
  eulerAtFinal: "bool", finalSigmasType: "zero|sigma_min", lambdaMinClipped: "num",
  predictX0: "bool", disableCorrector: "nums", originalInferenceSteps: "int", timestepScaling: "num",
};

/** Keys diffusers writes that change nothing here, or only bookkeeping. */
const IGNORED = new Set(["timestep_type", "dynamic_thresholding_ratio", "sample_max_value", "solver_p"]);

const camel = (k: string): string => k.replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());

/** Reads "-Infinity"/"Infinity"/"NaN" strings (strict JSON stand-ins) as numbers. */
function numberish(v: unknown): unknown {
  if (v === "-Infinity") return -Infinity;
  if (v === "Infinity") return Infinity;
  return v;
}

function checkValue(key: string, kind: string, raw: unknown): unknown {
  const v = numberish(raw);
  const bad = (): never => {
    throw new ConfigError(`scheduler config: ${key} must be ${kind.replace("?", " or null")} (got ${JSON.stringify(raw)})`);
  };
  if (kind.endsWith("?") && v === null) return null;
  const k = kind.replace("?", "");
  if (k === "int") return Number.isInteger(v) ? v : bad();
  if (k === "num") return typeof v === "number" && !Number.isNaN(v) ? v : bad();
  if (k === "bool") return typeof v === "boolean" ? v : bad();
  if (k === "str") return typeof v === "string" ? v : bad();
  if (k === "nums") return Array.isArray(v) && v.every((x) => typeof x === "number") ? v : bad();
  return typeof v === "string" && k.split("|").includes(v) ? v : bad();
}

/** Unsupported diffusers options are refused rather than silently ignored. */
function refuseUnsupported(json: Readonly<Record<string, unknown>>): void {
  const flags: [string, unknown][] = [
    ["thresholding", true], ["use_lu_lambdas", true], ["timestep_type", "continuous"],
  ];
  for (const [key, value] of flags) {
    if (json[key] === value) {
      throw new ConfigError(`scheduler config: ${key}=${JSON.stringify(value)} is not supported by sdts; remove it`);
    }
  }
}

/** Checks a class name, naming the implemented ones when it is unknown. */
export function checkSchedulerClass(name: unknown): SchedulerClass {
  if (typeof name === "string" && (SCHEDULER_CLASSES as readonly string[]).includes(name)) {
    return name as SchedulerClass;
  }
  throw new ConfigError(`unknown scheduler class ${JSON.stringify(name)}; use one of ${SCHEDULER_CLASSES.join(", ")}`);
}

/**
 * Parses a diffusers scheduler_config.json (object) for `className` (default: its
 * `_class_name`), applying `overrides` (snake_case) on top; missing keys take the class defaults.
 */
export function parseSchedulerConfig(
  json: Readonly<Record<string, unknown>>,
  options: { className?: string; overrides?: Readonly<Record<string, unknown>> } = {},
): SchedulerConfig {
  const merged = { ...json, ...(options.overrides ?? {}) };
  refuseUnsupported(merged);
  const className = checkSchedulerClass(options.className ?? merged._class_name);
  const out: Record<string, unknown> = { ...COMMON, ...CLASS_DEFAULTS[className] };
  for (const [key, raw] of Object.entries(merged)) {
    if (key.startsWith("_") || IGNORED.has(key)) continue;
    const name = camel(key) as keyof Fields;
    const kind = KINDS[name] as string | undefined;
    if (kind === undefined) continue; // a key of another class (e.g. predict_x0 for Euler)
    out[name] = checkValue(key, kind, raw);
  }
  const cfg = { ...(out as unknown as Fields), className };
  validate(cfg);
  return Object.freeze(cfg);
}

function validate(c: SchedulerConfig): void {
  if (c.numTrainTimesteps < 2) throw new ConfigError(`num_train_timesteps must be ≥ 2 (got ${c.numTrainTimesteps})`);
  if (c.trainedBetas !== null && c.trainedBetas.length !== c.numTrainTimesteps) {
    throw new ConfigError(
      `trained_betas has ${c.trainedBetas.length} values but num_train_timesteps is ${c.numTrainTimesteps}; make them agree`,
    );
  }
  if (c.solverOrder < 1 || c.solverOrder > 3) throw new ConfigError(`solver_order must be 1, 2 or 3 (got ${c.solverOrder})`);
  if (c.eta < 0) throw new ConfigError(`eta must be ≥ 0 (got ${c.eta})`);
}
