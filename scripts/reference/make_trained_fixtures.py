#!/usr/bin/env python3
"""Golden images of the shipped trained model (Tests/Fixtures/trained_tiny/).

diffusers runs the committed folder assets/trained-tiny-sdxl as a user would; the folder ships no
tokenizer files (`mixdq default-model` writes them from assets/clip-bpe), so the two tokenizers are
built from those same files and passed in:

    pipe = StableDiffusionXLPipeline.from_pretrained("assets/trained-tiny-sdxl", tokenizer=tok1,
                                                     tokenizer_2=tok2, torch_dtype=torch.float32)
    pipe(prompt=PROMPTS, guidance_scale=0.0, num_inference_steps=N, output_type="np" | "latent",
         generator=[torch.Generator().manual_seed(42 + i) for i in range(2)])

for N = 1 and 4 (fp16 weights upcast to fp32, as our engine loads them).

Writes:
    trained.json              sha256 of every shipped file, the prompts, seed and steps
    steps{1,4}.safetensors    latents [2,4,16,16] (output_type "latent")
    steps{1,4}_{b}.png        the uint8 images (numpy_to_pil of the "np" output)

Usage (the reference venv; CI never needs it):
    .venv-reference/bin/python scripts/reference/make_trained_fixtures.py
"""
from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path

import numpy as np
import torch
from diffusers import StableDiffusionXLPipeline
from PIL import Image
from safetensors.torch import save_file
from transformers import CLIPTokenizer

REPO_ROOT = Path(__file__).resolve().parents[2]
MODEL = REPO_ROOT / "assets" / "trained-tiny-sdxl"
CLIP_BPE = REPO_ROOT / "assets" / "clip-bpe"
OUT = REPO_ROOT / "Tests" / "Fixtures" / "trained_tiny"
# Two held-out captions (scripts/train/heldout_captions.txt): one object, two objects.
PROMPTS = ["a small purple triangle at the top right, white background",
           "a large green square at the bottom and a large orange star at the top, white background"]
SEED = 42
STEPS = [1, 4]
SHIPPED = ["model_index.json", "scheduler/scheduler_config.json", "unet/config.json",
           "unet/diffusion_pytorch_model.safetensors", "text_encoder/config.json", "text_encoder/model.safetensors",
           "text_encoder_2/config.json", "text_encoder_2/model.safetensors", "vae/config.json",
           "vae/diffusion_pytorch_model.safetensors"]


def generators():
    return [torch.Generator().manual_seed(SEED + i) for i in range(len(PROMPTS))]


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--model", type=Path, default=MODEL)
    p.add_argument("--out", type=Path, default=OUT)
    args = p.parse_args()
    torch.set_num_threads(1)
    held_out = (REPO_ROOT / "scripts" / "train" / "heldout_captions.txt").read_text().splitlines()
    assert all(prompt in held_out for prompt in PROMPTS), "the prompts must be held-out captions"
    vocab, merges = str(CLIP_BPE / "vocab.json"), str(CLIP_BPE / "merges.txt")
    tok1 = CLIPTokenizer(vocab, merges, pad_token="<|endoftext|>", model_max_length=77)
    tok2 = CLIPTokenizer(vocab, merges, pad_token="!", model_max_length=77)
    pipe = StableDiffusionXLPipeline.from_pretrained(args.model, tokenizer=tok1, tokenizer_2=tok2,
                                                     torch_dtype=torch.float32, add_watermarker=False)
    assert pipe.scheduler.config.prediction_type == "v_prediction"
    assert pipe.scheduler.config.timestep_spacing == "trailing"
    args.out.mkdir(parents=True, exist_ok=True)
    for steps in STEPS:
        common = dict(prompt=PROMPTS, guidance_scale=0.0, num_inference_steps=steps, height=128, width=128)
        latents = pipe(**common, output_type="latent", generator=generators()).images
        images = pipe(**common, output_type="np", generator=generators()).images
        save_file({"latents": latents.contiguous()}, args.out / f"steps{steps}.safetensors", metadata={"format": "pt"})
        for b, image in enumerate(pipe.numpy_to_pil(images)):
            image.save(args.out / f"steps{steps}_{b}.png")
        again = pipe(**common, output_type="np", generator=generators()).images
        assert np.array_equal(images, again), "diffusers is not deterministic here"
    manifest = {
        "model": "assets/trained-tiny-sdxl", "prompts": PROMPTS, "seed": SEED, "steps": STEPS,
        "sha256": {f: hashlib.sha256((args.model / f).read_bytes()).hexdigest() for f in SHIPPED},
    }
    (args.out / "trained.json").write_text(json.dumps(manifest, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
