# Shared by the make-unet-*-fixture.py scripts: the tiny diffusers UNet2DConditionModel their
# fixtures are made of (8 channels per level, "text" addition embedding with 2 pooling heads) with
# every parameter random and non-zero, and the writer of its diffusers folder.
import json
import os

import torch

from diffusers import UNet2DConditionModel
from st import save_file


def tiny_unet(seed, **extra):
    """Seeds torch, builds the U-Net (plus `extra` config entries) and randomizes it, in eval mode."""
    torch.manual_seed(seed)
    unet = UNet2DConditionModel(
        sample_size=8,
        in_channels=4,
        out_channels=4,
        block_out_channels=(8, 8),
        layers_per_block=1,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        attention_head_dim=2,
        cross_attention_dim=32,
        norm_num_groups=4,
        addition_embed_type="text",
        addition_embed_type_num_heads=2,
        **extra,
    ).eval()
    with torch.no_grad():
        for name, p in unet.named_parameters():
            if p.dim() == 1:
                # norm scales around 1, every bias (and shift) small but non-zero
                base = 1.0 if name.endswith("weight") else 0.0
                p.copy_(base + 0.2 * torch.randn_like(p))
            elif name.endswith("positional_embedding"):
                p.copy_(torch.randn_like(p))
            # other weights keep diffusers' (non-zero) default init
    return unet


def save_unet(unet, out):
    """Writes out/unet/config.json and diffusion_pytorch_model.safetensors (F32); returns the state dict."""
    os.makedirs(os.path.join(out, "unet"), exist_ok=True)
    cfg = {k: v for k, v in dict(unet.config).items() if not k.startswith("_")}
    cfg = {"_class_name": "UNet2DConditionModel", "_diffusers_version": "0.27.2", **cfg}
    with open(os.path.join(out, "unet", "config.json"), "w") as f:
        json.dump(cfg, f, indent=2, sort_keys=True)
        f.write("\n")
    state = {k: v.contiguous() for k, v in unet.state_dict().items()}
    save_file(state, os.path.join(out, "unet", "diffusion_pytorch_model.safetensors"), metadata={"format": "pt"})
    return state
