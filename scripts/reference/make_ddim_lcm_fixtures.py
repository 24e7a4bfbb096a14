#!/usr/bin/env python3
"""Goldens for DDIMScheduler and LCMScheduler (same JSON layout as make_prediction_type_fixtures.py).

Configs: DDIMScheduler as SD1.5 folders ship it (scaled_linear 0.00085-0.012, clip_sample false,
set_alpha_to_one false, steps_offset 1, leading spacing; eta 0), and with v_prediction and trailing
spacing; LCMScheduler as the LCM-LoRA / LCM folders ship it (scaled_linear 0.00085-0.012,
original_inference_steps 50, timestep_scaling 10, set_alpha_to_one true), also with
original_inference_steps 25 and timestep_scaling 5, and with prediction_type sample / v_prediction.

  * `steps`: set_timesteps(4), then every step index i on the same inputs (sample = 3 randn(seed 7),
    model_output = randn(seed 8), [1, 4, 4, 4]); LCM draws its injected noise from torch.Generator
    seed 9 (the `noise` input): `scale_model_input`, `prev_sample`, `pred_original_sample` (LCM:
    `denoised`);
  * `loops`: N = 1, 2 and 4 steps from latents = randn(seed 11, [1, 4, 8, 8]) * init_noise_sigma, one
    generator for latents and step noise, model_output = 0.5 * scale_model_input(latents) + 0.1;
  * `timesteps`: set_timesteps(N).timesteps for N in 1, 2, 3, 4, 8 per config.

Pinned: torch 2.15.0, diffusers 0.42.1.
Run: .venv-reference/bin/python scripts/reference/make_ddim_lcm_fixtures.py   (from the repo root)
"""
import json
import os

import numpy as np
import torch
import diffusers
from diffusers.utils.torch_utils import randn_tensor

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
OUT = os.path.join(ROOT, "Tests", "Fixtures", "rng", "ddim_lcm.json")
BASE = dict(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear")
CONFIGS = {
    "DDIMScheduler/sd15": dict(BASE, _class_name="DDIMScheduler", clip_sample=False, set_alpha_to_one=False,
                               steps_offset=1, timestep_spacing="leading", prediction_type="epsilon"),
    "DDIMScheduler/v_trailing": dict(BASE, _class_name="DDIMScheduler", clip_sample=False, set_alpha_to_one=False,
                                     steps_offset=1, timestep_spacing="trailing", prediction_type="v_prediction"),
    "DDIMScheduler/clip_sample": dict(BASE, _class_name="DDIMScheduler", prediction_type="epsilon"),
    "LCMScheduler/lcm": dict(BASE, _class_name="LCMScheduler", original_inference_steps=50, timestep_scaling=10.0,
                             set_alpha_to_one=True, steps_offset=1, prediction_type="epsilon"),
    "LCMScheduler/orig25": dict(BASE, _class_name="LCMScheduler", original_inference_steps=25, timestep_scaling=5.0,
                                prediction_type="epsilon"),
    "LCMScheduler/sample": dict(BASE, _class_name="LCMScheduler", prediction_type="sample", set_alpha_to_one=False),
    "LCMScheduler/v_prediction": dict(BASE, _class_name="LCMScheduler", prediction_type="v_prediction", clip_sample=True),
}


def bits(t):
    a = np.ascontiguousarray(t.detach().cpu().numpy().astype(np.float32)).reshape(-1)
    return "".join(f"{x:08x}" for x in a.view(np.uint32))


def gen(seed):
    return torch.Generator("cpu").manual_seed(seed)


def make(config):
    kwargs = {k: v for k, v in config.items() if k != "_class_name"}
    return getattr(diffusers, config["_class_name"])(**kwargs)


def main():
    shape = [1, 4, 4, 4]
    sample = torch.randn(shape, generator=gen(7)) * 3.0
    model_output = torch.randn(shape, generator=gen(8))
    noise = torch.randn(shape, generator=gen(9))
    out = {"torch": torch.__version__, "diffusers": diffusers.__version__, "configs": CONFIGS, "steps": [], "loops": [],
           "timesteps": {},
           "step_inputs": {"shape": shape, "sample": bits(sample), "model_output": bits(model_output), "noise": bits(noise)}}
    for name, config in CONFIGS.items():
        out["timesteps"][name] = {}
        for n in (1, 2, 3, 4, 8):
            s = make(config)
            s.set_timesteps(n)
            out["timesteps"][name][str(n)] = [int(t) for t in s.timesteps]
        for i in range(4):
            s = make(config)
            s.set_timesteps(4)
            t = s.timesteps[i]
            s._step_index = i
            scaled = s.scale_model_input(sample, t)
            s._step_index = i
            res = s.step(model_output, t, sample, generator=gen(9))
            x0 = res.denoised if hasattr(res, "denoised") else res.pred_original_sample
            out["steps"].append({"config": name, "steps": 4, "step_index": i, "scaled": bits(scaled),
                                 "prev_sample": bits(res.prev_sample), "pred_original_sample": bits(x0)})
        for n in (1, 2, 4):
            s = make(config)
            s.set_timesteps(n)
            if hasattr(s, "set_begin_index"):
                s.set_begin_index(0)
            g = gen(11)
            latents = randn_tensor((1, 4, 8, 8), generator=g, device=torch.device("cpu"), dtype=torch.float32)
            latents = latents * s.init_noise_sigma
            for t in s.timesteps:
                x_in = s.scale_model_input(latents, t)
                latents = s.step(x_in * 0.5 + 0.1, t, latents, generator=g).prev_sample
            out["loops"].append({"config": name, "seed": 11, "steps": n, "shape": [1, 4, 8, 8],
                                 "model_output": "0.5 * scale_model_input(latents) + 0.1", "final_latents": bits(latents)})
    with open(OUT, "w") as f:
        json.dump(out, f, indent=1)
        f.write("\n")
    print(f"wrote {OUT}: {len(out['steps'])} steps, {len(out['loops'])} loops")
    print(json.dumps(out["timesteps"]))


if __name__ == "__main__":
    main()
