# Writes test/fixtures/unet-text-embed/: a tiny diffusers UNet2DConditionModel with
# addition_embed_type "text" (add_embedding = TextTimeEmbedding, 2 pooling heads) and random
# weights, and one reference forward pass of it.
#
#   unet/config.json                          the model's diffusers config
#   unet/diffusion_pytorch_model.safetensors  its state_dict (F32)
#   io.safetensors                            sample [2,4,8,8], timestep [2], encoder_hidden_states
#                                             [2,16,32]; out [2,4,8,8] and add_embedding [2,32],
#                                             the add_embedding module's output (all F32)
#
# Every parameter is random and non-zero (LayerNorm and GroupNorm affines too), so each one
# matters. Channels are 8 per level to keep the fixture under 200 KB.
#
#   . ../shared/tools/torch-peer/env.sh && $PY scripts/make-unet-text-embed-fixture.py [out_dir]
import os
import sys

import torch

from st import save_file
from tiny_unet_fixture import save_unet, tiny_unet

OUT = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "test", "fixtures", "unet-text-embed")

unet = tiny_unet(1234)

sample = torch.randn(2, 4, 8, 8)
timestep = torch.tensor([10.0, 981.0])
context = torch.randn(2, 16, 32)

pooled = {}
hook = unet.add_embedding.register_forward_hook(lambda _m, _i, o: pooled.__setitem__("add_embedding", o.detach().clone()))
with torch.no_grad():
    out = unet(sample, timestep, encoder_hidden_states=context).sample
    hook.remove()
    # how much the addition embedding moves the output: the test must not pass without it
    saved = unet.add_embedding.forward
    unet.add_embedding.forward = lambda h: torch.zeros(h.shape[0], 32)
    without = unet(sample, timestep, encoder_hidden_states=context).sample
    unet.add_embedding.forward = saved

state = save_unet(unet, OUT)
save_file(
    {
        "sample": sample,
        "timestep": timestep,
        "encoder_hidden_states": context,
        "out": out.contiguous(),
        "add_embedding": pooled["add_embedding"].contiguous(),
    },
    os.path.join(OUT, "io.safetensors"),
)
print("add_embedding keys:", sorted(k for k in state if k.startswith("add_embedding.")))
print(f"params {sum(v.numel() for v in state.values())}, max |out| {out.abs().max():.4f}, max |out - out without add_embedding| {(out - without).abs().max():.4f}")
