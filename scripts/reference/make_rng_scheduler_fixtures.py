#!/usr/bin/env python3
"""Goldens for the torch-compatible RNG and the Euler schedulers.

Writes Tests/Fixtures/rng/randn.json and Tests/Fixtures/rng/schedulers.json. Every float32 is
stored as its bit pattern (8 hex digits, concatenated into one string per tensor) so that the
Swift tests can compare bit for bit.

randn.json
  * `torch.randn(shape, generator=torch.Generator("cpu").manual_seed(seed))` for seeds 0, 42,
    12345 and shapes [1,4,16,16], [7], [3,5], [3,5,7] (and [2,4,16,16] for seed 42); numel >= 16
    takes the vectorised Box-Muller fill, numel < 16 the scalar double path with its cached
    second value;
  * draw sequences from one generator (the cached normal sample survives between calls);
  * [1,4,64,64] for seed 42 as head/tail values plus an FNV-1a-64 hash of all bit patterns;
  * the same [1,4,16,16]/[3,5,7] draws with ATEN_CPU_CAPABILITY=default (the non-AVX2 kernel,
    which uses libm logf/cosf/sinf instead of avx_mathfun), run in a subprocess;
  * the noise stream of diffusers' EulerAncestral pipeline loop (seed 0, 2 steps): latents =
    randn_tensor(shape, generator=g) followed by one randn_tensor(model_output.shape,
    generator=g) per step.
schedulers.json
  * betas / alphas_cumprod (float32) for scaled_linear and linear schedules;
  * timesteps, sigmas, init_noise_sigma after set_timesteps(N), N in 1,2,3,4,8, for several
    configs (the SDXL-Turbo scheduler_config.json, leading/linspace spacings, EulerDiscrete);
  * single `step` calls with injected noise (a generator seeded so that it yields the stored
    noise), and SDXL-Turbo 1- and 4-step (and EulerDiscrete 2-step) loops drawing from a
    torch generator, with eps = 0.5 * scale_model_input(x) + 0.1, final latents stored.
Note: torch's float32 sqrt on x86 wheels goes through MKL and is 1 ulp off the correctly
rounded value for ~19% of inputs (190 of the 1000 sigma-table entries), so values that pass
through `** 0.5` are compared with a tolerance unless they are known to be exact.

Pinned: torch 2.15.0, diffusers 0.42.1, numpy as installed in the reference venv (scripts/reference/setup_venv.sh).
Run: .venv-reference/bin/python scripts/reference/make_rng_scheduler_fixtures.py   (from the repo root)
"""
import json
import os
import subprocess
import sys

import numpy as np
import torch

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
OUT = os.path.join(ROOT, "Tests", "Fixtures", "rng")


def bits(t):
    a = np.ascontiguousarray(t.detach().cpu().numpy().astype(np.float32)).reshape(-1)
    return "".join(f"{x:08x}" for x in a.view(np.uint32))


def fnv1a64(t):
    h = 0xCBF29CE484222325
    for x in np.ascontiguousarray(t.numpy()).reshape(-1).view(np.uint32):
        for k in range(4):
            h ^= (int(x) >> (8 * k)) & 0xFF
            h = (h * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return f"{h:016x}"


def gen(seed):
    return torch.Generator("cpu").manual_seed(seed)


def randn_section():
    out = {"randn": [], "sequences": [], "large": None, "pipeline_noise": []}
    for seed in (0, 42, 12345):
        shapes = [[1, 4, 16, 16], [7], [3, 5], [3, 5, 7]] + ([[2, 4, 16, 16]] if seed == 42 else [])
        for shape in shapes:
            out["randn"].append({"seed": seed, "shape": shape, "bits": bits(torch.randn(shape, generator=gen(seed)))})
    for seed, shapes in ((0, [[7], [3, 5]]), (42, [[7], [16], [1]]), (12345, [[3], [20], [2, 2], [1, 4, 4, 4]])):
        g = gen(seed)
        out["sequences"].append({"seed": seed, "shapes": shapes,
                                 "bits": [bits(torch.randn(s, generator=g)) for s in shapes]})
    big = torch.randn([1, 4, 64, 64], generator=gen(42))
    flat = big.reshape(-1)
    out["large"] = {"seed": 42, "shape": [1, 4, 64, 64], "head": bits(flat[:64]), "tail": bits(flat[-64:]),
                    "fnv1a64": fnv1a64(big)}
    from diffusers.utils.torch_utils import randn_tensor
    for seed, steps in ((0, 2),):
        g = gen(seed)
        draws = [randn_tensor((1, 4, 16, 16), generator=g, device=torch.device("cpu"), dtype=torch.float32)]
        for _ in range(steps):
            draws.append(randn_tensor((1, 4, 16, 16), generator=g, device=torch.device("cpu"), dtype=torch.float32))
        out["pipeline_noise"].append({"seed": seed, "shape": [1, 4, 16, 16], "steps": steps,
                                      "bits": [bits(d) for d in draws]})
    return out


def default_capability_section():
    code = (
        "import torch, json, numpy as np\n"
        "def bits(t):\n"
        "    a = t.numpy().astype(np.float32).reshape(-1)\n"
        "    return ''.join(f'{x:08x}' for x in a.view(np.uint32))\n"
        "out = {'capability': torch.backends.cpu.get_cpu_capability(), 'randn': []}\n"
        "for seed, shape in ((42, [1, 4, 16, 16]), (0, [3, 5, 7])):\n"
        "    g = torch.Generator('cpu').manual_seed(seed)\n"
        "    out['randn'].append({'seed': seed, 'shape': shape, 'bits': bits(torch.randn(shape, generator=g))})\n"
        "print(json.dumps(out))\n"
    )
    env = dict(os.environ, ATEN_CPU_CAPABILITY="default")
    res = subprocess.run([sys.executable, "-c", code], env=env, check=True, capture_output=True, text=True)
    return json.loads(res.stdout)


CONFIGS = {
    # stabilityai/sdxl-turbo scheduler/scheduler_config.json (sdxl-architecture.md §1.2)
    "sdxl_turbo": ("EulerAncestralDiscreteScheduler", dict(
        beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", num_train_timesteps=1000,
        prediction_type="epsilon", timestep_spacing="trailing", steps_offset=1, trained_betas=None)),
    "ancestral_leading": ("EulerAncestralDiscreteScheduler", dict(
        beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", timestep_spacing="leading", steps_offset=1)),
    "ancestral_linspace_linear": ("EulerAncestralDiscreteScheduler", dict(
        beta_start=0.0001, beta_end=0.02, beta_schedule="linear", timestep_spacing="linspace")),
    "ancestral_vpred": ("EulerAncestralDiscreteScheduler", dict(
        beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", timestep_spacing="trailing",
        prediction_type="v_prediction")),
    # diffusers' tiny SDXL test scheduler (sdxl-architecture.md §8.1)
    "euler_leading": ("EulerDiscreteScheduler", dict(
        beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", steps_offset=1, timestep_spacing="leading")),
    "euler_trailing": ("EulerDiscreteScheduler", dict(
        beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", timestep_spacing="trailing")),
}


def make(name):
    import diffusers
    cls_name, kw = CONFIGS[name]
    return getattr(diffusers, cls_name)(**kw)


def scheduler_section():
    out = {"configs": {}, "tables": {}, "schedules": [], "steps": [], "loops": []}
    for name, (cls_name, kw) in CONFIGS.items():
        out["configs"][name] = dict(kw, _class_name=cls_name)
    for name in ("sdxl_turbo", "ancestral_linspace_linear"):
        s = make(name)
        out["tables"][name] = {"betas": bits(s.betas), "alphas_cumprod": bits(s.alphas_cumprod)}
    for name in CONFIGS:
        for n in (1, 2, 3, 4, 8):
            s = make(name)
            s.set_timesteps(n)
            out["schedules"].append({"config": name, "steps": n, "timesteps": [float(t) for t in s.timesteps],
                                     "sigmas": bits(s.sigmas), "init_noise_sigma": bits(torch.as_tensor(s.init_noise_sigma))})
    shape = [1, 4, 4, 4]
    sample = torch.randn(shape, generator=gen(7)) * 3.0
    model_output = torch.randn(shape, generator=gen(8))
    noise = torch.randn(shape, generator=gen(9))
    for name in ("sdxl_turbo", "ancestral_vpred", "euler_leading"):
        s = make(name)
        s.set_timesteps(4)
        for i, t in enumerate(s.timesteps):
            s._step_index = i
            scaled = s.scale_model_input(sample, t)
            s._step_index = i
            res = s.step(model_output, t, sample, generator=gen(9))
            out["steps"].append({"config": name, "steps": 4, "step_index": i, "scaled": bits(scaled),
                                 "prev_sample": bits(res.prev_sample), "pred_original_sample": bits(res.pred_original_sample)})
    out["step_inputs"] = {"shape": shape, "sample": bits(sample), "model_output": bits(model_output), "noise": bits(noise)}
    for name, seed, n in (("sdxl_turbo", 0, 1), ("sdxl_turbo", 0, 4), ("euler_trailing", 3, 2)):
        from diffusers.utils.torch_utils import randn_tensor
        s = make(name)
        s.set_timesteps(n)
        s.set_begin_index(0)
        g = gen(seed)
        latents = randn_tensor((1, 4, 16, 16), generator=g, device=torch.device("cpu"), dtype=torch.float32)
        latents = latents * s.init_noise_sigma
        for t in s.timesteps:
            x_in = s.scale_model_input(latents, t)
            eps = x_in * 0.5 + 0.1
            latents = s.step(eps, t, latents, generator=g).prev_sample
        out["loops"].append({"config": name, "seed": seed, "steps": n, "shape": [1, 4, 16, 16],
                             "eps": "0.5 * scale_model_input(latents) + 0.1", "final_latents": bits(latents)})
    return out


def main():
    import diffusers
    os.makedirs(OUT, exist_ok=True)
    meta = {"torch": torch.__version__, "diffusers": diffusers.__version__, "numpy": np.__version__,
            "cpu_capability": torch.backends.cpu.get_cpu_capability()}
    randn = dict(meta, **randn_section())
    randn["default_capability"] = default_capability_section()
    with open(os.path.join(OUT, "randn.json"), "w") as f:
        json.dump(randn, f, indent=1)
        f.write("\n")
    with open(os.path.join(OUT, "schedulers.json"), "w") as f:
        json.dump(dict(meta, **scheduler_section()), f, indent=1)
        f.write("\n")
    print(meta, file=sys.stderr)


if __name__ == "__main__":
    main()
