"""PyTorch peer of bench/train.ts: seconds per training step of the embedded model's U-Net stage.

The same networks as sdts's step, built from the same configs (argv[1], a JSON file written by
bench/train.ts: {"unet": <diffusers config>, "text": <transformers CLIPTextConfig>, "batch": B}):
the text encoder frozen (no grad) in front of the U-Net, v targets, per-sample weighted MSE,
gradient clipping at norm 1 and AdamW (lr 1e-3, betas 0.9/0.999, eps 1e-8, weight decay 0.01).
Random weights and batches: the time of a step does not depend on their values.

Run with the torch-peer's environment (bench/train.ts does):
  . ../shared/tools/torch-peer/env.sh && $PY bench/torch_train_unet.py cfg.json [--steps 10] [--warmup 3] [--device cpu|cuda]
Prints one JSON object on the last line: {"device", "threads", "torch", "step_s" (median), "runs_s", "params"}.
"""
import argparse
import json
import os
import statistics
import sys
import time


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("config")
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--profile", help="also write torch.profiler's per-op table of two more steps to this file")
    a = ap.parse_args()
    for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[k] = str(a.threads)
    for k in ("HF_HUB_OFFLINE", "DIFFUSERS_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_HUB_DISABLE_TELEMETRY"):
        os.environ[k] = "1"
    import torch

    torch.set_num_threads(a.threads)
    # A Python with accelerate, peft or transformers releases newer than diffusers 0.27.2 knows
    # (the lent GPU machine's) breaks its import; the U-Net needs none of them, so they are hidden
    # while diffusers loads, then transformers is imported for the text encoder.
    hidden = [m for m in ("accelerate", "peft", "transformers") if m not in sys.modules]
    for m in hidden:
        sys.modules[m] = None
    from diffusers import UNet2DConditionModel

    for m in hidden:
        del sys.modules[m]
    try:
        from transformers import CLIPTextConfig, CLIPTextModel
    except ImportError:
        # a newer transformers wants a newer huggingface_hub than the 0.20.3 put first on the
        # path for diffusers: drop that one (diffusers keeps the objects it bound) and retry
        for k in [k for k in sys.modules if k == "huggingface_hub" or k.startswith("huggingface_hub.") or k == "transformers" or k.startswith("transformers.")]:
            del sys.modules[k]
        given = set(os.environ.get("PYTHONPATH", "").split(os.pathsep))

        def old_hub(p):
            return p in given and ("huggingface_hub" in p or (os.path.isdir(p) and any(n.startswith("huggingface_hub-") for n in os.listdir(p))))
        sys.path[:] = [p for p in sys.path if not old_hub(p)]
        from transformers import CLIPTextConfig, CLIPTextModel

    with open(a.config) as f:
        cfg = json.load(f)
    dev = ("cuda" if torch.cuda.is_available() else "cpu") if a.device == "auto" else a.device
    torch.manual_seed(0)
    unet_cfg = {k: v for k, v in cfg["unet"].items() if not k.startswith("_")}
    unet = UNet2DConditionModel(**unet_cfg).to(dev).train()
    text_cfg = {k: v for k, v in cfg["text"].items() if k not in ("model_type", "architectures")}
    text = CLIPTextModel(CLIPTextConfig(**text_cfg)).to(dev).eval().requires_grad_(False)
    opt = torch.optim.AdamW(unet.parameters(), lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01)
    b = cfg["batch"]
    c, s = unet_cfg["in_channels"], unet_cfg["sample_size"]
    g = torch.Generator().manual_seed(1)
    x = torch.randn(b, c, s, s, generator=g).to(dev)
    target = torch.randn(b, c, s, s, generator=g).to(dev)
    t = torch.randint(0, 1000, (b,), generator=g).to(dev)
    w = torch.full((b,), 1.0 / b).to(dev)
    ids = torch.randint(3, text_cfg["vocab_size"], (b, text_cfg["max_position_embeddings"]), generator=g).to(dev)

    def step():
        with torch.no_grad():
            enc = text(ids)
        # a "projection" class embedding reads the pooled (EOS) state, as sdts' trainer feeds it
        labels = enc.pooler_output if unet_cfg.get("class_embed_type") == "projection" else None
        out = unet(x, t, encoder_hidden_states=enc.last_hidden_state, class_labels=labels).sample
        loss = ((out - target) ** 2).mean(dim=(1, 2, 3)) @ w
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(unet.parameters(), 1.0)
        opt.step()
        return loss

    runs = []
    for i in range(a.warmup + a.steps):
        if dev == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        loss = step()
        float(loss)  # waits for the step on a GPU
        if i >= a.warmup:
            runs.append(time.perf_counter() - t0)
    if a.profile:
        from torch.profiler import ProfilerActivity, profile

        acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if dev == "cuda" else [])
        with profile(activities=acts) as prof:
            for _ in range(2):
                float(step())
        with open(a.profile, "w") as f:
            f.write(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=40))
    print(json.dumps({
        "device": torch.cuda.get_device_name(0) if dev == "cuda" else "cpu",
        "threads": a.threads,
        "torch": torch.__version__,
        "step_s": statistics.median(runs),
        "runs_s": runs,
        "params": sum(p.numel() for p in unet.parameters()),
        "loss": float(loss),
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
