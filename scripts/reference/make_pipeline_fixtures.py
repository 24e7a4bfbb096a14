#!/usr/bin/env python3
"""Generate the end-to-end pipeline parity fixtures (Tests/Fixtures/pipeline_tiny/).

The model is the embedded random default model of the Swift tool (`mixdq default-model --random --output DIR`, a deterministic tiny
SDXL-architecture pipeline in diffusers format, sdxl-architecture.md §8.2). Its weights are NOT stored here: the Swift
test writes the folder again with `DefaultModel.write(to:)` and first checks that the sha256 of every weights file
equals the one recorded in `model.json`.

diffusers is run exactly as a user would:

    pipe = StableDiffusionXLPipeline.from_pretrained(DIR, torch_dtype=torch.float32, add_watermarker=False)
    pipe(prompt=PROMPTS, guidance_scale=0.0, num_inference_steps=N, output_type="np" | "latent",
         generator=[torch.Generator().manual_seed(42 + i) for i in range(2)])

for N = 1, 2, 4, plus one classifier-free-guidance case (PROMPTS[0] only, guidance 5.0, 2 steps, seed 42; the
negative conditioning is all zeros because of `force_zeros_for_empty_prompt`). Forward hooks on the text encoders and
the UNet record the token ids, the conditioning and every UNet output; `prepare_latents` is wrapped to record the
initial latents; `callback_on_step_end` records the latents after every scheduler step.

Writes (all tensors float32 unless noted; one `__metadata__` key so the bytes are reproducible):

    model.json                 sha256 + size of each weights file of DIR, the default-model version, the cases
    steps{1,2,4}.safetensors   ids1, ids2 (I64 [2,77]), prompt_embeds [2,77,80], pooled_prompt_embeds [2,40],
                               add_time_ids [2,6], init_latents [2,4,16,16], timesteps [N],
                               unet_sample.{i} / eps.{i} (UNet input / output at step i), latents.{i} (after step i),
                               latents (final, = output_type "latent")
    cfg_steps2.safetensors     the same for the CFG case; UNet tensors have batch 2 = [uncond, cond]
    steps{N}_{b}.png, cfg_steps2_0.png
                               the uint8 images, i.e. output_type "pil" (numpy_to_pil of the "np" output)

Usage (the reference venv; CI never needs it):

    swift build -c release --product mixdq
    .venv-reference/bin/python scripts/reference/make_pipeline_fixtures.py --mixdq .build/release/mixdq
    # or, with a folder written beforehand by `mixdq default-model --random --output DIR`:
    .venv-reference/bin/python scripts/reference/make_pipeline_fixtures.py --model DIR

Deterministic (one CPU thread); ends with self-checks: "latent" and "np" runs agree, the images equal a manual
decode of the latents, the initial latents equal `randn(generator=manual_seed(42+i)) * init_noise_sigma`, every
weight diffusers/transformers loaded equals the file, and a second full run reproduces every tensor bit for bit.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

import diffusers
import transformers
from diffusers import StableDiffusionXLPipeline
from PIL import Image
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection
from safetensors.torch import load_file, save_file

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_OUT = REPO_ROOT / "Tests" / "Fixtures" / "pipeline_tiny"

PROMPTS = ["a photo of a cat", "A red bus driving down a city street!!"]
SEED = 42
STEPS = [1, 2, 4]
CFG = dict(name="cfg_steps2", prompts=PROMPTS[:1], steps=2, guidance=5.0)
WEIGHT_FILES = [
    "text_encoder/model.safetensors",
    "text_encoder_2/model.safetensors",
    "unet/diffusion_pytorch_model.safetensors",
    "vae/diffusion_pytorch_model.safetensors",
]

# CLIPTextConfig fields typed float that the Swift writer may emit as JSON integers.
FLOAT_FIELDS = ["initializer_factor", "initializer_range", "attention_dropout", "dropout", "layer_norm_eps"]


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def f32(t: torch.Tensor) -> torch.Tensor:
    return t.detach().to(torch.float32).contiguous().clone()


def check_loaded_weights(pipe: StableDiffusionXLPipeline, model: Path) -> None:
    """Every tensor of every weights file must be what the loaded module holds (a silent key mismatch would leave
    transformers' random init in place). transformers 5 keeps CLIPTextModel keys without `text_model.`."""
    for rel in WEIGHT_FILES:
        name = rel.split("/")[0]
        module = getattr(pipe, name)
        sd = module.state_dict()
        stored = load_file(str(model / rel))
        used = set()
        for k, v in stored.items():
            cands = [k, k.removeprefix("text_model."), "text_model." + k]
            hit = next((c for c in cands if c in sd), None)
            if hit is None:
                # The VAE file carries the encoder; diffusers loads it too, so every key must be present.
                raise RuntimeError(f"{rel}: key {k} not in the loaded {type(module).__name__}")
            if not torch.equal(sd[hit].to(torch.float32), v.to(torch.float32)):
                raise RuntimeError(f"{rel}: loaded {hit} differs from the file")
            used.add(hit)
        missing = [k for k in sd if k not in used and not k.endswith("position_ids")]
        if missing:
            raise RuntimeError(f"{rel}: module tensors not in the file (random init?): {missing[:5]}")
        print(f"[weights] {rel}: {len(stored)} tensors loaded exactly")


class Recorder:
    """Forward hooks on the text encoders and the UNet, a prepare_latents wrapper, and the step callback, around one
    pipeline call of StableDiffusionXLPipeline or StableDiffusionPipeline. Records ids{k} (and negative_ids{k} when
    the negative prompt is encoded: the second call of encoder k), the UNet's first-step conditioning under
    `context_key` / `pooled_key` / add_time_ids / timestep_cond, and per step unet_sample, timestep, eps, latents."""

    def __init__(self, pipe, context_key: str = "prompt_embeds", pooled_key: str = "pooled_prompt_embeds"):
        self.pipe = pipe
        self.context_key, self.pooled_key = context_key, pooled_key
        self.t: dict[str, torch.Tensor] = {}
        self.step = 0
        self.handles = []

    def __enter__(self):
        pipe, t = self.pipe, self.t
        calls: dict[int, int] = {}

        def te_hook(idx):
            def hook(_m, args, kwargs, _out):
                ids = args[0] if args else kwargs["input_ids"]
                n = calls.get(idx, 0)
                calls[idx] = n + 1
                t[f"ids{idx}" if n == 0 else f"negative_ids{idx}"] = ids.detach().to(torch.int64).contiguous().clone()
            return hook

        encoders = [pipe.text_encoder] + ([pipe.text_encoder_2] if getattr(pipe, "text_encoder_2", None) else [])
        for k, encoder in enumerate(encoders):
            self.handles.append(encoder.register_forward_hook(te_hook(k + 1), with_kwargs=True))

        def unet_hook(_m, args, kwargs, out):
            i = self.step
            sample = args[0] if args else kwargs["sample"]
            timestep = args[1] if len(args) > 1 else kwargs["timestep"]
            added = kwargs.get("added_cond_kwargs") or {}
            if i == 0:
                t[self.context_key] = f32(kwargs["encoder_hidden_states"])
                if "text_embeds" in added:
                    t[self.pooled_key] = f32(added["text_embeds"])
                    t["add_time_ids"] = f32(added["time_ids"])
                if kwargs.get("timestep_cond") is not None:
                    t["timestep_cond"] = f32(kwargs["timestep_cond"])
            t[f"unet_sample.{i}"] = f32(sample)
            t[f"timestep.{i}"] = f32(torch.as_tensor(timestep).reshape(1))
            t[f"eps.{i}"] = f32(out[0] if isinstance(out, tuple) else out.sample)

        self.handles.append(pipe.unet.register_forward_hook(unet_hook, with_kwargs=True))

        orig = pipe.prepare_latents

        def prepare_latents(*a, **k):
            lat = orig(*a, **k)
            t["init_latents"] = f32(lat)
            return lat

        pipe.prepare_latents = prepare_latents
        return self

    def callback(self, _pipe, i, _t, kwargs):
        self.t[f"latents.{i}"] = f32(kwargs["latents"])
        self.step = i + 1
        return {}

    def __exit__(self, *exc):
        for h in self.handles:
            h.remove()
        del self.pipe.prepare_latents  # back to the class method
        return False


def run_case(pipe, prompts, steps, guidance, output_type, recorder_keys=None):
    gens = [torch.Generator().manual_seed(SEED + i) for i in range(len(prompts))]
    with Recorder(pipe, **(recorder_keys or {})) as rec:
        out = pipe(prompt=prompts, guidance_scale=guidance, num_inference_steps=steps, output_type=output_type,
                   generator=gens, callback_on_step_end=rec.callback, callback_on_step_end_tensor_inputs=["latents"])
    return out.images, rec.t


def build_case(pipe, name, prompts, steps, guidance, out_dir: Path, recorder_keys=None, keep=None,
               generator: str = "scripts/reference/make_pipeline_fixtures.py") -> dict[str, torch.Tensor]:
    """Runs one case twice ("latent" and "np"), checks them, writes <name>.safetensors (the keys `keep` accepts,
    default all) and <name>_<b>.png, and returns every recorded tensor."""
    latents, rec_latent = run_case(pipe, prompts, steps, guidance, "latent", recorder_keys)
    images, rec_np = run_case(pipe, prompts, steps, guidance, "np", recorder_keys)
    # Both runs must be the same computation up to the decode.
    for k in rec_latent:
        if not torch.equal(rec_latent[k], rec_np[k]):
            raise RuntimeError(f"{name}: {k} differs between the 'latent' and the 'np' run")
    t = dict(rec_latent)
    t["latents"] = f32(latents)
    if not torch.equal(t["latents"], t[f"latents.{steps - 1}"]):
        raise RuntimeError(f"{name}: final latents differ from the last callback latents")
    t["timesteps"] = torch.cat([t.pop(f"timestep.{i}") for i in range(steps)])

    # Initial latents: one generator per image, randn([1, 4, s, s]) each (s: the UNet's sample_size), times
    # init_noise_sigma.
    sigma = pipe.scheduler.init_noise_sigma
    size = pipe.unet.config.sample_size
    want = torch.cat([torch.randn((1, 4, size, size), generator=torch.Generator().manual_seed(SEED + i))
                      for i in range(len(prompts))]) * sigma
    if not torch.equal(want, t["init_latents"]):
        raise RuntimeError(f"{name}: init_latents are not randn(manual_seed(42+i)) * {sigma}")

    # The np images must be a plain decode of the latents.
    with torch.no_grad():
        dec = pipe.vae.decode(latents / pipe.vae.config.scaling_factor, return_dict=False)[0]
    manual = pipe.image_processor.postprocess(dec, output_type="np")
    if not np.array_equal(manual, images):
        raise RuntimeError(f"{name}: np images differ from a manual decode of the latents")

    for b, img in enumerate(pipe.numpy_to_pil(images)):
        img.save(out_dir / f"{name}_{b}.png", optimize=False)
    u8 = (images * 255).round().astype("uint8")
    for b in range(len(prompts)):
        back = np.asarray(Image.open(out_dir / f"{name}_{b}.png").convert("RGB"))
        if not np.array_equal(back, u8[b]):
            raise RuntimeError(f"{name}_{b}.png does not round-trip")

    t = {k: t[k] for k in sorted(t)}
    stored = {k: v for k, v in t.items() if keep is None or keep(k)}
    save_file(stored, str(out_dir / f"{name}.safetensors"), metadata={"generator": f"{generator} ({name})"})
    timesteps = t["timesteps"].tolist()
    print(f"[{name}] prompts {len(prompts)} steps {steps} guidance {guidance}: timesteps "
          f"{timesteps if steps <= 6 else str(timesteps[:6])[:-1] + ', ...]'}  "
          f"max|latents| {t['latents'].abs().max().item():.4f}  image mean {u8.mean():.2f} std {u8.std():.2f}")
    return t


def load_text_encoders(model: Path) -> dict:
    """The default model's text_encoder*/config.json come from Foundation's JSONSerialization, which writes the float
    1.0 as `1`; transformers 5's strict config dataclasses reject `"initializer_factor": 1` (expects float). Load the
    configs here with every integer-valued float field turned into a float, then the weights from the folder as is.
    (Only the config parsing differs; initializer_factor does not affect loaded weights.)"""
    encoders = {}
    for name, cls in (("text_encoder", CLIPTextModel), ("text_encoder_2", CLIPTextModelWithProjection)):
        raw = json.loads((model / name / "config.json").read_text())
        for k in FLOAT_FIELDS:
            if k in raw and isinstance(raw[k], int):
                raw[k] = float(raw[k])
        config = CLIPTextConfig.from_dict(raw)
        encoders[name] = cls.from_pretrained(model / name, config=config, torch_dtype=torch.float32)
    return encoders


def build(model: Path, out_dir: Path) -> dict[str, dict[str, torch.Tensor]]:
    pipe = StableDiffusionXLPipeline.from_pretrained(model, torch_dtype=torch.float32, add_watermarker=False,
                                                     **load_text_encoders(model))
    pipe.set_progress_bar_config(disable=True)
    check_loaded_weights(pipe, model)
    cases = {}
    for n in STEPS:
        cases[f"steps{n}"] = build_case(pipe, f"steps{n}", PROMPTS, n, 0.0, out_dir)
    cases[CFG["name"]] = build_case(pipe, CFG["name"], CFG["prompts"], CFG["steps"], CFG["guidance"], out_dir)
    return cases


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--model", type=Path, help="folder written by `mixdq default-model --random --output DIR`")
    src.add_argument("--mixdq", type=Path, help="the built mixdq binary: writes the default model to a temp folder")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, help="fixture folder (default: Tests/Fixtures/pipeline_tiny)")
    args = ap.parse_args()

    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    print(f"torch {torch.__version__}  diffusers {diffusers.__version__}  transformers {transformers.__version__}  "
          f"python {sys.version.split()[0]}")

    tmp = None
    model = args.model
    if args.mixdq is not None:
        tmp = tempfile.TemporaryDirectory(prefix="mixdq-default-model-")
        model = Path(tmp.name) / "model"
        subprocess.run([str(args.mixdq), "default-model", "--random", "--output", str(model)], check=True)
    model = model.resolve()
    version = (model / "MIXDQ_DEFAULT_MODEL").read_text().strip() if (model / "MIXDQ_DEFAULT_MODEL").exists() else None

    args.out.mkdir(parents=True, exist_ok=True)
    for old in list(args.out.glob("*.safetensors")) + list(args.out.glob("*.png")):
        old.unlink()
    cases = build(model, args.out)

    doc = {
        "generator": "scripts/reference/make_pipeline_fixtures.py",
        "regenerate": "swift build -c release --product mixdq && .venv-reference/bin/python "
                      "scripts/reference/make_pipeline_fixtures.py --mixdq .build/release/mixdq",
        "default_model_version": version,
        "weights": {rel: {"sha256": sha256(model / rel), "bytes": (model / rel).stat().st_size} for rel in WEIGHT_FILES},
        "seed": SEED,
        "prompts": PROMPTS,
        "cases": [{"name": f"steps{n}", "prompts": PROMPTS, "steps": n, "guidance": 0.0} for n in STEPS]
                 + [{"name": CFG["name"], "prompts": CFG["prompts"], "steps": CFG["steps"], "guidance": CFG["guidance"]}],
        "versions": {"torch": torch.__version__, "diffusers": diffusers.__version__,
                     "transformers": transformers.__version__},
    }
    (args.out / "model.json").write_text(json.dumps(doc, indent=1) + "\n")

    # Self-check: a second full run reproduces every stored tensor bit for bit.
    with tempfile.TemporaryDirectory() as again_dir:
        again = build(model, Path(again_dir))
        worst = 0.0
        for name, t in cases.items():
            stored = load_file(str(args.out / f"{name}.safetensors"))
            for k, v in again[name].items():
                if k.startswith("ids"):
                    worst = max(worst, float((v != stored[k]).sum()))
                else:
                    worst = max(worst, (v - stored[k]).abs().max().item())
            for png in Path(again_dir).glob("*.png"):
                if png.read_bytes() != (args.out / png.name).read_bytes():
                    worst = max(worst, 1.0)
    print(f"[pipeline_tiny] self-check: max |rerun - stored| = {worst}")
    for f in args.out.iterdir():
        f.chmod(0o644)  # safetensors writes 0600
    total = sum(f.stat().st_size for f in args.out.rglob("*") if f.is_file())
    print(f"total fixture bytes: {total:,}")
    if tmp is not None:
        tmp.cleanup()
    if worst != 0.0:
        print("SELF-CHECK FAILED", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
