#!/usr/bin/env python3
"""Goldens for LoRA fusing: tiny LoRAs on the tiny SDXL fixtures, fused by diffusers.

Base model: Tests/Fixtures/unet_sdxl_tiny/unet (F16 weights, loaded as fp32), clip_tiny/text_encoder
and clip_tiny/text_encoder_2. One LoRA (rank 4, down = 0.3 randn, up = 0.3 randn, torch seed 20 + i
per module) on these modules:

  unet: a transformer block's attn1.to_q, attn2.to_k (cross-attention input), attn1.to_out.0,
        ff.net.0.proj, the block's proj_in (linear), a resnet's conv1 (3x3 conv) and time_emb_proj;
  text_encoder: layers.0.self_attn.q_proj, layers.1.mlp.fc1; text_encoder_2: layers.0.self_attn.v_proj, layers.1.mlp.fc2.

written in three conventions (Tests/Fixtures/lora_tiny/):

  * kohya.safetensors   lora_unet_/lora_te1_/lora_te2_<flattened>.lora_down/.lora_up.weight + .alpha
                        (alpha 8 = 2 x rank: scaling 2), fused at lora_scale 1.0; without the text
                        encoders' self_attn modules (see in_file: diffusers drops them);
  * peft.safetensors    unet./text_encoder./text_encoder_2.<path>.lora_A/.lora_B.weight, no alpha
                        (scaling 1), fused at lora_scale 0.7;
  * lora_down_up.safetensors  unet.<path>.lora.down/.lora.up.weight (older diffusers, UNet only),
                        fused at lora_scale 1.0.

  * kohya_sgm.safetensors  a UNet-only kohya LoRA in SDXL kohya's own naming, the SGM UNet's module
                        names (lora_unet_input_blocks_5_1_transformer_blocks_0_attn1_to_q, ..._in_layers_2,
                        _op, middle_block_, output_blocks_, time_embed_0, label_emb_0_2, out_2, ...) on 17
                        modules across every block kind (sgm_name() below writes them from the SGM layout;
                        diffusers maps them back with its own code), alpha 8, fused at lora_scale 1.0.

Each is loaded with StableDiffusionXLPipeline.load_lora_weights and fused with fuse_lora(lora_scale=s);
fused_<name>.safetensors holds, for every targeted module, the fused weight (`<component>.<path>.weight`),
the UNet output on unet_sdxl_tiny/io_b1.safetensors (`unet_out`) and the encoders' last hidden state on
clip_tiny/io_te1/io_te2 input_ids (`text_encoder_out`, `text_encoder_2_out`). fp32 throughout.

Pinned: torch 2.15.0, diffusers 0.42.1, peft 0.21.2 (load_lora_weights needs peft).
Run: .venv-reference/bin/python scripts/reference/make_lora_fixtures.py [--only kohya_sgm]   (from the repo root)
"""
import os
import sys

import torch
from diffusers import EulerAncestralDiscreteScheduler, StableDiffusionXLPipeline, UNet2DConditionModel
from safetensors.torch import load_file, save_file
from transformers import CLIPTextModel, CLIPTextModelWithProjection

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
FIX = os.path.join(ROOT, "Tests", "Fixtures")
OUT = os.path.join(FIX, "lora_tiny")
RANK = 4


def load_pipeline():
    unet = UNet2DConditionModel.from_pretrained(os.path.join(FIX, "unet_sdxl_tiny", "unet"), torch_dtype=torch.float32)
    te1 = CLIPTextModel.from_pretrained(os.path.join(FIX, "clip_tiny", "text_encoder"), torch_dtype=torch.float32)
    te2 = CLIPTextModelWithProjection.from_pretrained(os.path.join(FIX, "clip_tiny", "text_encoder_2"), torch_dtype=torch.float32)
    return StableDiffusionXLPipeline(vae=None, text_encoder=te1, text_encoder_2=te2, tokenizer=None, tokenizer_2=None,
                                     unet=unet, scheduler=EulerAncestralDiscreteScheduler())


def first(model, *suffixes):
    """The first module path ending with each suffix (in module order)."""
    names = [n for n, _ in model.named_modules()]
    out = []
    for s in suffixes:
        hit = next((n for n in names if n.endswith(s)), None)
        assert hit is not None, s
        out.append(hit)
    return out


def targets(pipe):
    block = first(pipe.unet, "attn2.to_k")[0].rsplit(".attn2.to_k", 1)[0]  # ...transformer_blocks.0
    attentions = block.rsplit(".transformer_blocks.", 1)[0]
    unet = [f"{block}.attn1.to_q", f"{block}.attn2.to_k", f"{block}.attn1.to_out.0", f"{block}.ff.net.0.proj",
            f"{attentions}.proj_in"] + first(pipe.unet, "resnets.0.conv1", "resnets.0.time_emb_proj")
    te1 = ["text_model.encoder.layers.0.self_attn.q_proj", "text_model.encoder.layers.1.mlp.fc1"]
    # diffusers reads a kohya text-encoder LoRA of attention projections only as unknown: an mlp layer too.
    te2 = ["text_model.encoder.layers.0.self_attn.v_proj", "text_model.encoder.layers.1.mlp.fc2"]
    return {"unet": (pipe.unet, unet), "text_encoder": (pipe.text_encoder, te1), "text_encoder_2": (pipe.text_encoder_2, te2)}


def module(model, path):
    """transformers 5 builds CLIPTextModel without the `text_model.` level its files (and LoRA files) name."""
    mods = dict(model.named_modules())
    return mods[path] if path in mods else mods[path.removeprefix("text_model.")]


def make_lora(pipe):
    """{component: {path: (down, up)}}, seeded per module."""
    lora, i = {}, 0
    for comp, (model, paths) in targets(pipe).items():
        lora[comp] = {}
        for p in paths:
            w = module(model, p).weight
            g = torch.Generator().manual_seed(20 + i)
            i += 1
            down = 0.3 * torch.randn((RANK,) + tuple(w.shape[1:]), generator=g)
            up_shape = (w.shape[0], RANK) + (1,) * (w.dim() - 2)
            up = 0.3 * torch.randn(up_shape, generator=g)
            lora[comp][p] = (down, up)
    return lora


# UNet modules of the SGM file: every block kind of the tiny SDXL UNet (layers_per_block 2; down
# DownBlock2D, CrossAttn, CrossAttn; up CrossAttn, CrossAttn, UpBlock2D; mid transformer depth 2).
SGM_TARGETS = [
    "conv_in", "time_embedding.linear_1", "add_embedding.linear_2",
    "down_blocks.0.resnets.0.time_emb_proj", "down_blocks.0.resnets.1.conv1", "down_blocks.0.downsamplers.0.conv",
    "down_blocks.1.resnets.0.conv_shortcut", "down_blocks.1.attentions.1.transformer_blocks.0.attn1.to_q",
    "down_blocks.2.attentions.0.proj_in", "mid_block.attentions.0.transformer_blocks.1.attn2.to_k",
    "mid_block.resnets.1.conv2", "up_blocks.0.resnets.2.conv_shortcut",
    "up_blocks.0.attentions.2.transformer_blocks.0.ff.net.2", "up_blocks.0.upsamplers.0.conv",
    "up_blocks.1.attentions.0.proj_out", "up_blocks.2.resnets.1.conv1", "conv_out",
]


def sgm_name(path, layers_per_block=2, down_attention=(False, True, True), up_attention=(True, True, False)):
    """The SGM (ldm) UNet's name of a diffusers module path, from the SGM layout: input_blocks.0 = conv_in,
    then per level (resnet, attention) pairs and the downsampler; middle_block 0/1/2 = resnet, attention,
    resnet; output_blocks over the up levels, layers_per_block + 1 pairs each, upsampler after the pair."""
    top = {"conv_in": "input_blocks.0.0", "time_embedding.linear_1": "time_embed.0", "time_embedding.linear_2": "time_embed.2",
           "add_embedding.linear_1": "label_emb.0.0", "add_embedding.linear_2": "label_emb.0.2", "conv_out": "out.2"}
    if path in top:
        return top[path]
    resnet = {"norm1": "in_layers.0", "conv1": "in_layers.2", "time_emb_proj": "emb_layers.1", "norm2": "out_layers.0",
              "conv2": "out_layers.3", "conv_shortcut": "skip_connection"}
    parts = path.split(".")
    pairs = layers_per_block + 1
    if parts[0] == "mid_block":
        is_resnet = parts[1] == "resnets"
        block = {("resnets", "0"): "middle_block.0", ("attentions", "0"): "middle_block.1", ("resnets", "1"): "middle_block.2"}[(parts[1], parts[2])]
        rest = parts[3:]
    else:
        level, kind, index, rest = int(parts[1]), parts[2], int(parts[3]), parts[4:]
        is_resnet = kind == "resnets"
        if parts[0] == "down_blocks":
            if kind == "downsamplers":
                return f"input_blocks.{(level + 1) * pairs}.0.op"
            block = f"input_blocks.{1 + level * pairs + index}.{0 if is_resnet else 1}"
        else:
            if kind == "upsamplers":
                return f"output_blocks.{level * pairs + layers_per_block}.{2 if up_attention[level] else 1}.conv"
            block = f"output_blocks.{level * pairs + index}.{0 if is_resnet else 1}"
    if is_resnet:
        rest = [resnet[rest[0]]] + rest[1:]
    return ".".join([block] + rest)


KOHYA_PREFIX = {"unet": "lora_unet_", "text_encoder": "lora_te1_", "text_encoder_2": "lora_te2_"}


def in_file(name, comp, path):
    """Which modules each file holds. diffusers 0.42.1 maps kohya text-encoder attention keys
    (`lora_te1_..._self_attn_q_proj`) to `to_q_lora` and then silently fuses nothing for them (the
    weight stays as it was), so the kohya file leaves those out; the PEFT file covers them."""
    if name == "kohya":
        return comp == "unet" or "self_attn" not in path
    if name == "lora_down_up":
        return comp == "unet"
    return True


def write_formats(lora):
    kohya, peft, downup = {}, {}, {}
    for comp, mods in lora.items():
        for p, (down, up) in mods.items():
            if in_file("kohya", comp, p):
                k = KOHYA_PREFIX[comp] + p.replace(".", "_")
                kohya[k + ".lora_down.weight"] = down
                kohya[k + ".lora_up.weight"] = up
                kohya[k + ".alpha"] = torch.tensor(2.0 * RANK)
            peft[f"{comp}.{p}.lora_A.weight"] = down
            peft[f"{comp}.{p}.lora_B.weight"] = up
            if comp == "unet":
                downup[f"unet.{p}.lora.down.weight"] = down
                downup[f"unet.{p}.lora.up.weight"] = up
    files = {"kohya": (kohya, 1.0), "peft": (peft, 0.7), "lora_down_up": (downup, 1.0)}
    for name, (sd, _) in files.items():
        save_file({k: v.contiguous() for k, v in sd.items()}, os.path.join(OUT, f"{name}.safetensors"))
    return {name: scale for name, (_, scale) in files.items()}


@torch.no_grad()
def outputs(pipe):
    io = load_file(os.path.join(FIX, "unet_sdxl_tiny", "io_b1.safetensors"))
    out = pipe.unet(io["sample"], io["timestep"], encoder_hidden_states=io["encoder_hidden_states"],
                    added_cond_kwargs={"text_embeds": io["text_embeds"], "time_ids": io["time_ids"]}).sample
    te1 = pipe.text_encoder(load_file(os.path.join(FIX, "clip_tiny", "io_te1.safetensors"))["input_ids"]).last_hidden_state
    te2 = pipe.text_encoder_2(load_file(os.path.join(FIX, "clip_tiny", "io_te2.safetensors"))["input_ids"]).last_hidden_state
    return {"unet_out": out, "text_encoder_out": te1, "text_encoder_2_out": te2}


def make_sgm_file(base):
    """kohya_sgm.safetensors: a LoRA (seeded 60 + i) on SGM_TARGETS, keys in SGM naming."""
    sd, lora = {}, {}
    for i, p in enumerate(SGM_TARGETS):
        w = module(base.unet, p).weight
        g = torch.Generator().manual_seed(60 + i)
        down = 0.3 * torch.randn((RANK,) + tuple(w.shape[1:]), generator=g)
        up = 0.3 * torch.randn((w.shape[0], RANK) + (1,) * (w.dim() - 2), generator=g)
        k = "lora_unet_" + sgm_name(p).replace(".", "_")
        assert k not in sd
        sd[k + ".lora_down.weight"], sd[k + ".lora_up.weight"], sd[k + ".alpha"] = down, up, torch.tensor(2.0 * RANK)
        lora[p] = (down, up)
    save_file({k: v.contiguous() for k, v in sd.items()}, os.path.join(OUT, "kohya_sgm.safetensors"))
    return lora


def sgm_golden(base, base_out):
    """fused_kohya_sgm.safetensors: diffusers' fused weights (it maps SGM names with its own code)."""
    pipe = load_pipeline()
    pipe.load_lora_weights(os.path.join(OUT, "kohya_sgm.safetensors"))
    pipe.fuse_lora(lora_scale=1.0, components=["unet"])
    pipe.unload_lora_weights()
    golden = {}
    for p in SGM_TARGETS:
        w = module(pipe.unet, p).weight.detach().float().contiguous()
        assert (w - module(base.unet, p).weight).abs().max() > 1e-3, f"kohya_sgm: diffusers did not fuse unet.{p}"
        golden[f"unet.{p}.weight"] = w
    golden["unet_out"] = outputs(pipe)["unet_out"]
    print(f"kohya_sgm: unet_out changed by the LoRA by up to {(golden['unet_out'] - base_out['unet_out']).abs().max().item():.4g}")
    save_file({k: v.contiguous() for k, v in golden.items()}, os.path.join(OUT, "fused_kohya_sgm.safetensors"))


def main():
    os.makedirs(OUT, exist_ok=True)
    base = load_pipeline()
    if sys.argv[1:] == ["--only", "kohya_sgm"]:   # the SGM file alone (the others stay as committed)
        make_sgm_file(base)
        sgm_golden(base, outputs(base))
        return
    lora = make_lora(base)
    scales = write_formats(lora)
    base_out = outputs(base)
    for name, scale in scales.items():
        pipe = load_pipeline()
        pipe.load_lora_weights(os.path.join(OUT, f"{name}.safetensors"))
        pipe.fuse_lora(lora_scale=scale, components=["unet", "text_encoder", "text_encoder_2"])
        pipe.unload_lora_weights()  # keeps the fused weights, drops the LoRA layers
        golden = {}
        for comp, (model, paths) in targets(pipe).items():
            base_model = targets(base)[comp][0]
            for p in paths:
                if not in_file(name, comp, p):
                    continue
                w = module(model, p).weight.detach().float().contiguous()
                assert (w - module(base_model, p).weight).abs().max() > 1e-3, f"{name}: diffusers did not fuse {comp}.{p}"
                golden[f"{comp}.{p}.weight"] = w
        golden.update(outputs(pipe))
        for k in ("unet_out", "text_encoder_out", "text_encoder_2_out"):
            d = (golden[k] - base_out[k]).abs().max().item()
            print(f"{name}: {k} changed by the LoRA by up to {d:.4g}")
            if not (name == "lora_down_up" and k != "unet_out"):
                assert d > 1e-3, f"{name}: the LoRA did not change {k}"
        save_file({k: v.contiguous() for k, v in golden.items()}, os.path.join(OUT, f"fused_{name}.safetensors"))
        print(name, "scale", scale, len(golden), "tensors")
    make_sgm_file(base)
    sgm_golden(base, base_out)


if __name__ == "__main__":
    main()
