# Writes test/fixtures/unet-class-embed/: a tiny diffusers UNet2DConditionModel with
# class_embed_type "projection" (class_embedding = TimestepEmbedding on class_labels [B, 32]) next
# to addition_embed_type "text", as the default model's U-Net has both, with random weights and one
# reference forward pass.
#
#   unet/config.json                          the model's diffusers config
#   unet/diffusion_pytorch_model.safetensors  its state_dict (F32)
#   io.safetensors                            sample [2,4,8,8], timestep [2], encoder_hidden_states
#                                             [2,16,32], class_labels [2,32]; out [2,4,8,8] and
#                                             class_embedding [2,32], that module's output (all F32)
#
#   . ../shared/tools/torch-peer/env.sh && $PY scripts/make-unet-class-embed-fixture.py [out_dir]
import os
import sys

import torch

from st import save_file
from tiny_unet_fixture import save_unet, tiny_unet

OUT = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "test", "fixtures", "unet-class-embed")

unet = tiny_unet(4321, class_embed_type="projection", projection_class_embeddings_input_dim=32)

sample = torch.randn(2, 4, 8, 8)
timestep = torch.tensor([10.0, 981.0])
context = torch.randn(2, 16, 32)
labels = torch.randn(2, 32)

seen = {}
hook = unet.class_embedding.register_forward_hook(lambda _m, _i, o: seen.__setitem__("class_embedding", o.detach().clone()))
with torch.no_grad():
    out = unet(sample, timestep, encoder_hidden_states=context, class_labels=labels).sample
    hook.remove()
    # how much the class labels move the output: the test must not pass without them
    other = unet(sample, timestep, encoder_hidden_states=context, class_labels=torch.zeros_like(labels)).sample

state = save_unet(unet, OUT)
save_file(
    {
        "sample": sample,
        "timestep": timestep,
        "encoder_hidden_states": context,
        "class_labels": labels,
        "out": out.contiguous(),
        "class_embedding": seen["class_embedding"].contiguous(),
    },
    os.path.join(OUT, "io.safetensors"),
)
print("class_embedding keys:", sorted(k for k in state if k.startswith("class_embedding.")))
print(f"params {sum(v.numel() for v in state.values())}, max |out| {out.abs().max():.4f}, max |out - out with zero class_labels| {(out - other).abs().max():.4f}")
