"""Quick-checker accuracy of a pipeline folder on the 50 held-out captions (diffusers, fp32).

    evaluate.py --model assets/trained-tiny-sdxl [--seeds 4] [--steps 1 4] [--json OUT]

The shipped folder has no tokenizer files; they are built from assets/clip-bpe. This is the
in-training checker (quick_checker.py, the contract's rules); the project's checker is `mixdq eval`.
"""
from __future__ import annotations

import argparse
import json
import pathlib

import torch
from diffusers import StableDiffusionXLPipeline

import common_training as ct
import model_configs
from train_unet import evaluate


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--model", type=pathlib.Path, required=True)
    p.add_argument("--seeds", type=int, default=4)
    p.add_argument("--steps", type=int, nargs="+", default=[1, 4])
    p.add_argument("--json", type=pathlib.Path)
    p.add_argument("--grid", type=pathlib.Path, help="save a 10x5 grid of the first seed's images here (per steps)")
    args = p.parse_args()
    ct.setup_threads()
    tokenizer, tokenizer_2 = model_configs.tokenizers()
    pipeline = StableDiffusionXLPipeline.from_pretrained(args.model, tokenizer=tokenizer, tokenizer_2=tokenizer_2,
                                                         torch_dtype=torch.float32)
    results = {}
    for steps in args.steps:
        grid = args.grid.with_name(f"{args.grid.stem}_steps{steps}{args.grid.suffix}") if args.grid else None
        results[steps] = evaluate(pipeline, seeds=tuple(range(args.seeds)), steps=steps, save=grid)
        row = " ".join(f"{k} {v:.3f}" for k, v in results[steps].items())
        print(f"steps {steps} (n = {50 * args.seeds}): {row}", flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
