"""PyTorch reference for bench/gpu.sh: seconds per SD 1.5 U-Net step (512x512, CFG batch 2).

diffusers 0.27.2's UNet2DConditionModel (the torch-peer's pinned source, carried as
.devdata/torchsrc.tar.xz and put on PYTHONPATH by bench/gpu.sh) built from the SD 1.5 config with
its own random init (timing does not depend on the weights), on CUDA when there is one, in fp16
and fp32. Input: latents [2, 4, 64, 64], context [2, 77, 768], timestep 500, as bench/sd.ts.

Run: python3 bench/torch_unet.py [--size 512] [--runs 10] [--warmup 3] [--dtypes fp16,fp32]
Prints one line per dtype; appends them to $OUT/gpu.txt when OUT is set.
"""
import argparse
import contextlib
import os
import statistics
import sys
import time

T0 = time.perf_counter()
REPORT = os.environ.get("SDTS_GPU_REPORT") or (os.path.join(os.environ["OUT"], "gpu.txt") if os.environ.get("OUT") else None)


def say(msg):
    line = f"[{time.perf_counter() - T0:6.1f} s] {msg}"
    print(line, flush=True)
    if REPORT:
        with open(REPORT, "a") as f:
            f.write(line + "\n")


SD15_UNET = dict(
    sample_size=64, in_channels=4, out_channels=4, center_input_sample=False, flip_sin_to_cos=True, freq_shift=0,
    down_block_types=["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"],
    mid_block_type="UNetMidBlock2DCrossAttn",
    up_block_types=["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"],
    block_out_channels=[320, 640, 1280, 1280], layers_per_block=2, downsample_padding=1, mid_block_scale_factor=1,
    act_fn="silu", norm_num_groups=32, norm_eps=1e-5, cross_attention_dim=768, attention_head_dim=8,
    use_linear_projection=False, upcast_attention=False,
)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--dtypes", default="fp16,fp32")
    a = ap.parse_args()
    for k in ("HF_HUB_OFFLINE", "DIFFUSERS_OFFLINE", "HF_HUB_DISABLE_TELEMETRY"):
        os.environ[k] = "1"
    import torch

    # The device's Python has accelerate, peft and transformers releases newer than diffusers
    # 0.27.2 knows; the bare U-Net needs none of them, so hide them (find_spec → None).
    for m in ("accelerate", "peft", "transformers"):
        sys.modules.setdefault(m, None)
    t = time.perf_counter()
    import diffusers
    from diffusers import UNet2DConditionModel

    dev = "cuda" if torch.cuda.is_available() else "cpu"
    name = torch.cuda.get_device_name(0) if dev == "cuda" else "cpu"
    say(f"torch {torch.__version__} on {name}, diffusers {diffusers.__version__} from {os.path.dirname(diffusers.__file__)}, "
        f"import {time.perf_counter() - t:.2f} s; cudnn tf32 {torch.backends.cudnn.allow_tf32}, matmul tf32 {torch.backends.cuda.matmul.allow_tf32}")
    torch.manual_seed(0)
    t = time.perf_counter()
    # random init on the GPU (torch ≥ 2.0: a device is a context manager): seconds instead of a CPU init
    with torch.device(dev) if hasattr(torch.device, "__enter__") else contextlib.nullcontext():
        base = UNet2DConditionModel(**SD15_UNET).eval()
    say(f"torch: built SD 1.5 U-Net ({sum(p.numel() for p in base.parameters()) / 1e6:.1f}M params) in {time.perf_counter() - t:.2f} s; "
        f"attention processor {type(base.attn_processors[next(iter(base.attn_processors))]).__name__}")
    h = a.size // 8
    for dt in a.dtypes.split(","):
        dtype = {"fp16": torch.float16, "fp32": torch.float32, "bf16": torch.bfloat16}[dt]
        unet = base.to(dev, dtype)
        g = torch.Generator().manual_seed(1)
        x = torch.randn(2, 4, h, h, generator=g).to(dev, dtype)
        ctx = torch.randn(2, 77, 768, generator=g).to(dev, dtype)
        ts = torch.tensor([500, 500], device=dev)
        times = []
        with torch.inference_mode():
            for i in range(a.warmup + a.runs):
                if dev == "cuda":
                    torch.cuda.synchronize()
                s = time.perf_counter()
                out = unet(x, ts, encoder_hidden_states=ctx).sample
                if dev == "cuda":
                    torch.cuda.synchronize()
                if i >= a.warmup:
                    times.append(time.perf_counter() - s)
        finite = bool(torch.isfinite(out).all())
        mem = f", peak GPU memory {torch.cuda.max_memory_allocated() / 2**30:.2f} GiB" if dev == "cuda" else ""
        say(f"torch {dt}: U-Net step (batch 2, {a.size}x{a.size}) median {statistics.median(times) * 1000:.1f} ms, "
            f"min {min(times) * 1000:.1f} ms over {len(times)} runs after {a.warmup} warm-ups; finite {finite}{mem}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except Exception as e:  # report verbatim, then fail
        import traceback
        say("torch FAILED: " + "".join(traceback.format_exception(e))[-3000:])
        sys.exit(1)
