#!/usr/bin/env python3
"""Goldens for `prediction_type` (epsilon, v_prediction, sample) in both Euler schedulers.

Writes Tests/Fixtures/rng/prediction_types.json (float32 as 8-hex-digit bit patterns, as
make_rng_scheduler_fixtures.py does). For EulerDiscreteScheduler and EulerAncestralDiscreteScheduler
with the trained model's schedule (scaled_linear 0.00085-0.012, trailing) and each prediction type:

  * `steps`: set_timesteps(4), then every step index i on the same inputs (sample = 3 randn(seed 7),
    model_output = randn(seed 8), [1, 4, 4, 4]) with the noise of torch.Generator seed 9:
    `scale_model_input`, `prev_sample`, `pred_original_sample`;
  * `loops`: N = 1 and 4 steps from latents = randn(seed 11, [1, 4, 8, 8]) * init_noise_sigma, one
    generator for latents and step noise, model_output = 0.5 * scale_model_input(latents) + 0.1.

diffusers 0.42.1's EulerAncestralDiscreteScheduler raises NotImplementedError for
prediction_type "sample" (EulerDiscreteScheduler implements it as `pred_original_sample =
model_output`). mixdq honours it in both; the ancestral "sample" goldens come from diffusers' own
`step` source with exactly that one line put in place of the raise (checked to occur once), so every
other operation is diffusers'. The stock error message is stored under `ancestral_sample_stock_error`.

Pinned: torch 2.15.0, diffusers 0.42.1 (scripts/reference/requirements.txt).
Run: .venv-reference/bin/python scripts/reference/make_prediction_type_fixtures.py   (from the repo root)
"""
import inspect
import json
import os
import sys
import textwrap

import numpy as np
import torch
import diffusers

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
OUT = os.path.join(ROOT, "Tests", "Fixtures", "rng", "prediction_types.json")
SCHEDULE = dict(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", timestep_spacing="trailing")
CLASSES = ("EulerDiscreteScheduler", "EulerAncestralDiscreteScheduler")
TYPES = ("epsilon", "v_prediction", "sample")
STOCK_RAISE = 'raise NotImplementedError("prediction_type not implemented yet: sample")'


def bits(t):
    a = np.ascontiguousarray(t.detach().cpu().numpy().astype(np.float32)).reshape(-1)
    return "".join(f"{x:08x}" for x in a.view(np.uint32))


def gen(seed):
    return torch.Generator("cpu").manual_seed(seed)


def ancestral_with_sample():
    """EulerAncestralDiscreteScheduler whose step treats "sample" as EulerDiscreteScheduler does."""
    cls = diffusers.EulerAncestralDiscreteScheduler
    source = textwrap.dedent(inspect.getsource(cls.step))
    assert source.count(STOCK_RAISE) == 1, "diffusers' ancestral step changed; review the patch"
    source = source.replace(STOCK_RAISE, "pred_original_sample = model_output")
    namespace = dict(vars(sys.modules[cls.__module__]))
    exec(compile(source, "<patched EulerAncestralDiscreteScheduler.step>", "exec"), namespace)
    return type("EulerAncestralWithSample", (cls,), {"step": namespace["step"]})


def make(cls_name, prediction_type):
    cls = getattr(diffusers, cls_name)
    if cls_name == "EulerAncestralDiscreteScheduler" and prediction_type == "sample":
        cls = ancestral_with_sample()
    return cls(prediction_type=prediction_type, **SCHEDULE)


def stock_error():
    s = diffusers.EulerAncestralDiscreteScheduler(prediction_type="sample", **SCHEDULE)
    s.set_timesteps(1)
    x = torch.zeros(1, 4, 2, 2)
    try:
        s.step(x, s.timesteps[0], x)
    except NotImplementedError as e:
        return f"NotImplementedError: {e}"
    raise AssertionError("stock diffusers now implements ancestral 'sample'; drop the patch")


def main():
    shape = [1, 4, 4, 4]
    sample = torch.randn(shape, generator=gen(7)) * 3.0
    model_output = torch.randn(shape, generator=gen(8))
    noise = torch.randn(shape, generator=gen(9))
    out = {"torch": torch.__version__, "diffusers": diffusers.__version__, "schedule": SCHEDULE,
           "ancestral_sample_stock_error": stock_error(), "configs": {}, "steps": [], "loops": [],
           "step_inputs": {"shape": shape, "sample": bits(sample), "model_output": bits(model_output), "noise": bits(noise)}}
    for cls_name in CLASSES:
        for prediction_type in TYPES:
            name = f"{cls_name}/{prediction_type}"
            out["configs"][name] = dict(SCHEDULE, _class_name=cls_name, prediction_type=prediction_type)
            for i in range(4):
                s = make(cls_name, prediction_type)
                s.set_timesteps(4)
                t = s.timesteps[i]
                s._step_index = i
                scaled = s.scale_model_input(sample, t)
                s._step_index = i
                res = s.step(model_output, t, sample, generator=gen(9))
                out["steps"].append({"config": name, "steps": 4, "step_index": i, "scaled": bits(scaled),
                                     "prev_sample": bits(res.prev_sample),
                                     "pred_original_sample": bits(res.pred_original_sample)})
            for n in (1, 4):
                from diffusers.utils.torch_utils import randn_tensor
                s = make(cls_name, prediction_type)
                s.set_timesteps(n)
                s.set_begin_index(0)
                g = gen(11)
                latents = randn_tensor((1, 4, 8, 8), generator=g, device=torch.device("cpu"), dtype=torch.float32)
                latents = latents * s.init_noise_sigma
                for t in s.timesteps:
                    x_in = s.scale_model_input(latents, t)
                    latents = s.step(x_in * 0.5 + 0.1, t, latents, generator=g).prev_sample
                out["loops"].append({"config": name, "seed": 11, "steps": n, "shape": [1, 4, 8, 8],
                                     "model_output": "0.5 * scale_model_input(latents) + 0.1",
                                     "final_latents": bits(latents)})
    with open(OUT, "w") as f:
        json.dump(out, f, indent=1)
        f.write("\n")
    print(f"wrote {OUT}: {len(out['steps'])} steps, {len(out['loops'])} loops; stock: {out['ancestral_sample_stock_error']}")


if __name__ == "__main__":
    main()
