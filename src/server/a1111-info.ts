/** The `info` JSON of A1111's txt2img and img2img answers, as its Processed.js() writes it. */
import type { A1111Request } from "./a1111-request.js";
import type { Job } from "./job.js";

/** A1111's job timestamp: local time as YYYYMMDDHHMMSS. */
export function jobTimestamp(ms: number): string {
  const d = new Date(ms);
  const p = (n: number) => String(n).padStart(2, "0");
  return `${d.getFullYear()}${p(d.getMonth() + 1)}${p(d.getDate())}${p(d.getHours())}${p(d.getMinutes())}${p(d.getSeconds())}`;
}

/**
 * The `info` of a finished job. `width`/`height` are the request's (A1111 reports the first
 * pass's size for hires, and the requested size for img2img); the images carry the final size.
 */
export function a1111Info(job: Job, req: A1111Request, version: string, inpaintingModel: boolean): Record<string, unknown> {
  const first = req.runs[0];
  const allSeeds = req.runs.flatMap((r) => Array.from({ length: r.batchSize }, (_, i) => r.seed + i));
  const n = allSeeds.length;
  const info = job.results[0]?.info;
  const masked = first?.kind === "inpaint";
  return {
    prompt: first?.prompt ?? "",
    all_prompts: Array<string>(n).fill(first?.prompt ?? ""),
    negative_prompt: first?.negativePrompt ?? "",
    all_negative_prompts: Array<string>(n).fill(first?.negativePrompt ?? ""),
    seed: allSeeds[0] ?? -1,
    all_seeds: allSeeds,
    subseed: req.subseed,
    all_subseeds: allSeeds.map((_, i) => req.subseed + i),
    subseed_strength: 0,
    width: first?.width,
    height: first?.height,
    sampler_name: first?.sampler,
    cfg_scale: first?.cfgScale,
    steps: first?.steps,
    batch_size: req.batchSize,
    restore_faces: false,
    face_restoration_model: null,
    sd_model_name: info?.model ?? null,
    sd_model_hash: null,
    sd_vae_name: null,
    sd_vae_hash: null,
    seed_resize_from_w: -1,
    seed_resize_from_h: -1,
    denoising_strength: req.denoisingStrength,
    extra_generation_params: req.extra,
    index_of_first_image: 0,
    infotexts: job.results.flatMap((r) => r.info.infotexts),
    styles: [],
    job_timestamp: jobTimestamp(job.startedAt || job.createdAt),
    clip_skip: 1,
    is_using_inpainting_conditioning: masked && inpaintingModel,
    version,
  };
}
