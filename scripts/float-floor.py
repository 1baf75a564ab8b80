# How far float32 results are from float64 ones on the golden txt2img and editing cases.
#
# For each case in ../shared/golden/tiny-pipeline/cases (txt2img: StableDiffusionPipeline, on the
# case's noise and seed), edit/img2img (StableDiffusionImg2ImgPipeline on inputs/test_pattern.png)
# and edit/inpaint (StableDiffusionInpaintPipeline on test_pattern.png + mask.png; the 9-channel
# tiny-inpaint U-Net or the 4-channel blending one), runs diffusers (torch-peer sources),
# output_type="latent", as:
#   t32_1    float32, 1 torch thread
#   t32_2    float32, 2 torch threads
#   t64      float64 (text encoder, U-Net, VAE, scheduler arithmetic); the constants diffusers
#            defines in float32 are kept: sigmas/timesteps/betas and the sinusoidal time
#            embedding (sdts computes that one the same float32 way)
#   t64full  as t64, and the time embedding computed in float64 too
# The generator is seeded as the golden generator did; in float64 every normal draw (scheduler
# steps, the VAE posterior sample, the img2img / inpaint pipeline noise) is made in float32 and
# cast, so the noise is identical (checked against scheduler_noise.NNN, and draw.NNN for the edit
# cases). The images go in as the PIL images the golden runs read.
# Writes /tmp/floatfloor/<case>.<variant>.npy and prints max abs differences. If
# /tmp/floatfloor/<case>.sdts.safetensors exist (node --import tsx scripts/float-floor.ts),
# compares sdts too. --sets=txt2img,img2img,inpaint picks the case sets (default: all).
#
#   . ../shared/tools/torch-peer/env.sh && nice -n 10 $PY scripts/float-floor.py [--sets=...] [golden_dir] [out_dir]
import inspect
import json
import math
import os
import sys
import textwrap

import numpy as np
import torch
from PIL import Image

import diffusers
from diffusers import (AutoencoderKL, StableDiffusionImg2ImgPipeline, StableDiffusionInpaintPipeline,
                       StableDiffusionPipeline, UNet2DConditionModel)
from diffusers.models import embeddings as emb_mod
from diffusers.models.attention_processor import Attention
from safetensors.torch import load_file
from transformers import CLIPTextModel

here = os.path.dirname(os.path.abspath(__file__))
flags = [a for a in sys.argv[1:] if a.startswith("--")]
args = [a for a in sys.argv[1:] if not a.startswith("--")]
SETS = ["txt2img", "img2img", "inpaint"]
for f in flags:
    assert f.startswith("--sets="), f"unknown flag {f}"
    SETS = f[len("--sets="):].split(",")
GOLDEN = args[0] if len(args) > 0 else os.environ.get("SDTS_GOLDEN", os.path.join(here, "../../shared/golden"))
if not os.path.isdir(GOLDEN):
    GOLDEN = "/work/shared/golden"
OUT = args[1] if len(args) > 1 else "/tmp/floatfloor"
FOLDER = os.path.join(GOLDEN, "tiny-pipeline")
EDIT = os.path.join(GOLDEN, "edit")
CASE_DIRS = {"txt2img": os.path.join(FOLDER, "cases"), "img2img": os.path.join(EDIT, "img2img"),
             "inpaint": os.path.join(EDIT, "inpaint")}
os.makedirs(OUT, exist_ok=True)

# --- patches, all inactive (float32 behaviour) unless a float64 variant turns them on ---
state = {"f64": False, "full64": False, "draws": []}


def draw_in_float32(mod):
    """The module's randn_tensor draws in float32 (as the golden run), then casts; draws recorded."""
    orig = mod.__dict__["randn_tensor"]

    def randn32(shape, generator=None, device=None, dtype=None, layout=None, _orig=orig):
        x = _orig(shape, generator=generator, device=device, dtype=torch.float32, layout=layout)
        state["draws"].append(x.clone())
        return x.to(dtype or torch.float32)

    mod.__dict__["randn_tensor"] = randn32


# 1. Scheduler steps upcast `sample` to torch.float32 (a downcast in float64): make that dtype a switch.
SCHED_CLASSES = ["EulerDiscreteScheduler", "EulerAncestralDiscreteScheduler", "DPMSolverMultistepScheduler",
                 "DDIMScheduler", "PNDMScheduler", "UniPCMultistepScheduler"]
for name in SCHED_CLASSES:
    cls = getattr(diffusers, name)
    mod = sys.modules[cls.__module__]
    src = textwrap.dedent(inspect.getsource(cls.step))
    if "torch.float32" in src:
        mod.__dict__["_STEP_DTYPE"] = torch.float32
        exec(compile(src.replace("torch.float32", "_STEP_DTYPE"), mod.__file__, "exec"), mod.__dict__)
        cls.step = mod.__dict__.pop("step")
    # 2. normal draws inside step(), and (2b) in the VAE posterior sample and the edit pipelines' noise
    if "randn_tensor" in mod.__dict__:
        draw_in_float32(mod)
for cls in [StableDiffusionImg2ImgPipeline, StableDiffusionInpaintPipeline]:
    draw_in_float32(sys.modules[cls.__module__])
draw_in_float32(sys.modules["diffusers.models.autoencoders.vae"])  # DiagonalGaussianDistribution.sample

# 3. time embedding in float64 for t64full
orig_emb = emb_mod.get_timestep_embedding


def timestep_embedding(timesteps, embedding_dim, flip_sin_to_cos=False, downscale_freq_shift=1, scale=1, max_period=10000):
    if not state["full64"]:
        return orig_emb(timesteps, embedding_dim, flip_sin_to_cos, downscale_freq_shift, scale, max_period)
    half = embedding_dim // 2
    exponent = -math.log(max_period) * torch.arange(0, half, dtype=torch.float64) / (half - downscale_freq_shift)
    e = scale * (timesteps[:, None].double() * torch.exp(exponent)[None, :])
    e = torch.cat([torch.sin(e), torch.cos(e)], dim=-1)
    if flip_sin_to_cos:
        e = torch.cat([e[:, half:], e[:, :half]], dim=-1)
    if embedding_dim % 2 == 1:
        e = torch.nn.functional.pad(e, (0, 1, 0, 0))
    return e


emb_mod.get_timestep_embedding = timestep_embedding


def f64_scheduler(sched):
    # scalar coefficients in float64 too (values stay the float32 schedule constants)
    orig_set = sched.set_timesteps

    def set_timesteps(*a, **k):
        orig_set(*a, **k)
        for k2, v in list(vars(sched).items()):
            if torch.is_tensor(v) and v.is_floating_point():
                setattr(sched, k2, v.double())

    sched.set_timesteps = set_timesteps


def call_pipe(pipe, case, kind, common, noise, inputs):
    """One diffusers call of the case's kind; returns the latents."""
    if kind == "txt2img":
        return pipe(**common, height=case["height"], width=case["width"], latents=noise).images
    if kind == "img2img":
        return pipe(**common, image=inputs["image"], strength=case["strength"]).images
    return pipe(**common, image=inputs["image"], mask_image=inputs["mask"], strength=case["strength"],
                height=case["height"], width=case["width"]).images


def run(pipe, case, tensors, variant, inputs):
    kind = case.get("kind", "txt2img")
    f64 = variant.startswith("t64")
    state.update(f64=f64, full64=(variant == "t64full"), draws=[])
    torch.set_num_threads(1 if variant == "t32_1" else 2)
    dtype = torch.float64 if f64 else torch.float32
    torch.set_default_dtype(dtype)
    for name in SCHED_CLASSES:
        sys.modules[getattr(diffusers, name).__module__].__dict__["_STEP_DTYPE"] = dtype
    cfg = json.load(open(os.path.join(FOLDER, "scheduler/scheduler_config.json")))
    sched = getattr(diffusers, case["scheduler_class"]).from_config(cfg, **case["scheduler_overrides"])
    if f64:
        f64_scheduler(sched)
    pipe.scheduler = sched
    nets = [pipe.unet, pipe.text_encoder, pipe.vae]
    for net in nets:
        net.to(dtype)
    for m in list(pipe.unet.modules()) + list(pipe.vae.modules()):
        if isinstance(m, Attention):  # upcast_softmax would be a float32 cast; a no-op in float32
            m.upcast_softmax = False if f64 else m._orig_upcast_softmax
    wrong = set()
    hooks = []
    if f64:
        for mname, m in [(f"{type(net).__name__}.{n}", m) for net in nets for n, m in net.named_modules()]:
            def hook(mod, inp, out, mname=mname):
                outs = list(out.values()) if isinstance(out, dict) else list(out) if isinstance(out, (tuple, list)) else [out]
                for o in outs:
                    if torch.is_tensor(o) and o.is_floating_point() and o.dtype != torch.float64:
                        wrong.add(mname)
            hooks.append(m.register_forward_hook(hook))
    g = torch.Generator("cpu").manual_seed(case["seed"])
    noise = None
    if kind == "txt2img":  # the golden txt2img noise was drawn outside the pipeline; advance g past it
        noise = torch.randn(tuple(tensors["noise"].shape), generator=g, dtype=torch.float32)
        assert torch.equal(noise, tensors["noise"]), "initial noise differs"
        noise = noise.to(dtype)
    cfg_on = case["guidance_scale"] > 1
    with torch.no_grad():
        enc = lambda ids: pipe.text_encoder(torch.tensor([ids]))[0]
        pe = enc(case["input_ids"])
        ne = enc(case["negative_input_ids"]) if cfg_on else None
        if not f64:
            n = case["num_images_per_prompt"]
            assert np.abs(pe.repeat(n, 1, 1).numpy() - tensors["prompt_embeds"].numpy()).max() <= 1e-6
            assert not cfg_on or np.abs(ne.repeat(n, 1, 1).numpy() - tensors["negative_prompt_embeds"].numpy()).max() <= 1e-6
        common = dict(prompt_embeds=pe, negative_prompt_embeds=ne, num_inference_steps=case["num_inference_steps"],
                      guidance_scale=case["guidance_scale"], num_images_per_prompt=case["num_images_per_prompt"],
                      generator=g, output_type="latent")
        out = call_pipe(pipe, case, kind, common, noise, inputs)
    for h in hooks:
        h.remove()
    torch.set_default_dtype(torch.float32)
    ts = [float(t) for t in sched.timesteps]
    want_ts = case.get("full_timesteps", case["timesteps"])
    assert np.allclose(ts, want_ts), f"timesteps {ts} != {want_ts}"
    draws = state["draws"]
    # txt2img: the scheduler's draws; edit cases: every draw of the generator, in order
    prefix, count = ("scheduler_noise", case["num_scheduler_noise_draws"]) if kind == "txt2img" else ("draw", case["num_draws"])
    assert len(draws) == count, f"{len(draws)} draws, expected {count}"
    for i, d in enumerate(draws):
        assert torch.equal(d, tensors[f"{prefix}.{i:03d}"]), f"{prefix} {i} differs"
    if not state["full64"]:
        wrong.discard("UNet2DConditionModel.time_proj")  # t64 keeps diffusers' float32 time embedding on purpose
    if wrong:
        print(f"  {case['name']} {variant}: modules with non-float64 outputs: {sorted(wrong)[:8]}")
    assert out.dtype == dtype
    return out.double().numpy()


def load_pipes():
    """The pipelines each (kind, pipeline folder) runs, sharing the tiny-pipeline modules."""
    # The tokenizer does not load under the torch-peer stubs (AddedToken unhashable); the
    # pipelines get the embeddings of the case's recorded input ids instead (checked against
    # the recorded prompt_embeds in float32). tiny-inpaint's text encoder and VAE are
    # byte-identical copies of tiny-pipeline's, so only its U-Net is loaded.
    base = StableDiffusionPipeline(
        vae=AutoencoderKL.from_pretrained(FOLDER, subfolder="vae"),
        text_encoder=CLIPTextModel.from_pretrained(FOLDER, subfolder="text_encoder", torch_dtype=torch.float32),
        tokenizer=None, unet=UNet2DConditionModel.from_pretrained(FOLDER, subfolder="unet"),
        scheduler=diffusers.PNDMScheduler.from_pretrained(FOLDER, subfolder="scheduler"), safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    comps = dict(base.components, requires_safety_checker=False)
    pipes = {("txt2img", "tiny-pipeline"): base}
    if "img2img" in SETS:
        pipes[("img2img", "tiny-pipeline")] = StableDiffusionImg2ImgPipeline(**comps)
    if "inpaint" in SETS:
        pipes[("inpaint", "tiny-pipeline")] = StableDiffusionInpaintPipeline(**comps)
        unet9 = UNet2DConditionModel.from_pretrained(os.path.join(EDIT, "tiny-inpaint"), subfolder="unet")
        pipes[("inpaint", "tiny-inpaint")] = StableDiffusionInpaintPipeline(**dict(comps, unet=unet9))
    for pipe in pipes.values():
        pipe.set_progress_bar_config(disable=True)
        for m in list(pipe.unet.modules()) + list(pipe.vae.modules()):
            if isinstance(m, Attention) and not hasattr(m, "_orig_upcast_softmax"):
                m._orig_upcast_softmax = m.upcast_softmax
    return pipes


def main():
    pipes = load_pipes()
    inputs = {"image": Image.open(os.path.join(EDIT, "inputs/test_pattern.png")),
              "mask": Image.open(os.path.join(EDIT, "inputs/mask.png"))}
    variants = ["t32_1", "t32_2", "t64", "t64full"]
    rows = []
    for kind in SETS:
        cdir = CASE_DIRS[kind]
        for c in json.load(open(os.path.join(cdir, "index.json")))["cases"]:
            case = json.load(open(os.path.join(cdir, c["name"] + ".json")))
            assert case.get("kind", "txt2img") == kind
            pipe = pipes[(kind, case.get("pipeline_folder", "tiny-pipeline"))]
            tensors = load_file(os.path.join(cdir, c["file"]))
            res = {}
            for v in variants:
                res[v] = run(pipe, case, tensors, v, inputs)
                np.save(os.path.join(OUT, f"{c['name']}.{v}.npy"), res[v])
            res["golden"] = tensors["final_latent"].double().numpy()
            p = os.path.join(OUT, f"{c['name']}.sdts.safetensors")
            res["sdts"] = load_file(p)["final_latent"].double().numpy() if os.path.exists(p) else None
            rows.append((kind, c["name"], res))
            print(f"{kind}/{c['name']}: done", file=sys.stderr)

    def d(r, a, b):
        return "-" if r[a] is None or r[b] is None else f"{np.abs(r[a] - r[b]).max():.2e}"

    cols = [("golden", "t32_1"), ("golden", "t32_2"), ("t32_1", "t32_2"), ("golden", "t64"), ("t32_1", "t64"),
            ("sdts", "golden"), ("sdts", "t64"), ("golden", "t64full"), ("sdts", "t64full"), ("t64", "t64full")]
    print("max abs differences of final_latent (golden = the recorded diffusers float32 run; t64 = float64 reference)")
    print("| kind | case | max abs latent | " + " | ".join(f"{a}−{b}" for a, b in cols) + " |")
    print("|---" * (len(cols) + 3) + "|")
    for kind, name, r in rows:
        print(f"| {kind} | {name} | {np.abs(r['golden']).max():.1f} | " + " | ".join(d(r, a, b) for a, b in cols) + " |")


main()
