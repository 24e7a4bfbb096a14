#!/usr/bin/env python3
"""Goldens for the SD1.5-family pipeline (with an LCM-LoRA and with an LCM-distilled UNet) and for SDXL base
with classifier-free guidance at 30 steps (Tests/Fixtures/sd_pipeline_tiny/).

SD1.5 part: a tiny-but-faithful StableDiffusionPipeline folder, random weights (seeded, the rule of
make_unet_fixtures.py: Conv/Linear W ~ N(0, 1/fan_in), biases 0.1*N, norm weights 1 + 0.2*N, biases 0.2*N; CLIP
embeddings 0.5*N), stored F16 like the fp16 variants of real checkpoints and loaded as fp32:

    model/unet          SD1.5 topology: (CrossAttnDownBlock2D, DownBlock2D), channels (16, 32), 8 groups, 2 heads,
                        1x1 conv proj_in/out, cross dim 32, no added embeddings, sample_size 8 (64x64 images)
    model/text_encoder  CLIPTextModel: hidden 32, 2 layers, 4 heads, quick_gelu, vocab 1002
    model/tokenizer     the CLIP BPE (assets/clip-bpe) cut to its first 490 merges (byte alphabet + merges +
                        <|startoftext|>, <|endoftext|>), so the embedding table stays small
    model/vae           AutoencoderKL, 4 levels (8, 8, 16, 16), 8 groups, scaling 0.18215 (SD1.5's)
    model/scheduler     SD1.5's PNDMScheduler config (the pipeline switches to LCMScheduler.from_config, as the
                        original MixDQ does with an adapter)
    unet_lcm/           the same UNet with time_cond_proj_dim 32 (an LCM-distilled UNet's guidance embedding)
    lcm_lora/pytorch_lora_weights.safetensors
                        a kohya-named LoRA (lora_unet_<path>.lora_down/.lora_up/.alpha, rank 4, alpha 8; like
                        latent-consistency/lcm-lora-sdv1-5) on every attention projection, feed-forward, proj_in/out,
                        resnet conv1/conv2/time_emb_proj of the UNet (down/up 0.1*randn, seed 100 + i)

Cases, each diffusers run as a user runs it, with generators [torch.Generator().manual_seed(42 + i)]:

    lcm_lora_steps4        StableDiffusionPipeline + load_lora_weights + fuse_lora(1.0) + LCMScheduler, 4 steps,
                           guidance 1.5 (CFG: the negative rows encode ""), 2 prompts
    lcm_distilled_steps4   StableDiffusionPipeline with unet_lcm + LCMScheduler, 4 steps, guidance 8.0 (no CFG:
                           timestep_cond = get_guidance_scale_embedding(7.0, 32)), 2 prompts

SDXL part: the embedded random default model (`mixdq default-model --random`, weights not stored here; model.json
holds their sha256) with SDXL base 1.0's EulerDiscreteScheduler config (sdxl_base/scheduler_config.json, leading
spacing, steps_offset 1) and model_index.json:

    sdxl_base_cfg_steps30      StableDiffusionXLPipeline, 30 steps, guidance 7.5, force_zeros_for_empty_prompt true
                               (SDXL base ships it true: the negative rows are zeros), 1 prompt
    sdxl_empty_negative_steps2 the same with force_zeros_for_empty_prompt false (the negative rows encode "" through
                               both encoders, pooled from text_encoder_2), 2 steps, guidance 5.0, 1 prompt

Each case file holds ids{k} / negative_ids{k} (I64, the prompts' and, with CFG, the negative prompt's tokens per
text encoder), context (the UNet's encoder_hidden_states, [uncond, cond] rows with CFG), text_embeds and
add_time_ids (SDXL), timestep_cond (when the UNet has one), init_latents, timesteps, unet_sample.{i} / eps.{i}
(UNet input / output; runs over 4 steps keep steps 0, 9, 19, ... and the last), latents (final);
PNGs <case>_<b>.png.

Usage (the reference venv; CI never needs it):

    swift build -c release --product mixdq
    .venv-reference/bin/python scripts/reference/make_sd_pipeline_fixtures.py --mixdq .build/release/mixdq

Deterministic (one thread); ends with self-checks: the "latent" and "np" runs agree, init latents are
randn(manual_seed(42 + i)) * init_noise_sigma, diffusers fused every LoRA module, and a second run of every case
reproduces every tensor bit for bit; LatentConsistencyModelPipeline gives the lcm_distilled_steps4 latents exactly.
"""
from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import torch
from torch import nn

import diffusers
import transformers
from diffusers import (AutoencoderKL, LatentConsistencyModelPipeline, LCMScheduler, StableDiffusionPipeline,
                       StableDiffusionXLPipeline, UNet2DConditionModel)
from safetensors.torch import save_file
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

sys.path.insert(0, str(Path(__file__).resolve().parent))
from make_pipeline_fixtures import (WEIGHT_FILES, build_case as build_pipeline_case,  # noqa: E402
                                    check_loaded_weights, load_text_encoders, sha256)
from make_clip_fixtures import randomise_ as randomise_clip_  # noqa: E402
from make_unet_fixtures import randomise_ as randomise_conv_  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_OUT = REPO_ROOT / "Tests" / "Fixtures" / "sd_pipeline_tiny"
PROMPTS = ["a photo of a cat", "A red bus driving down a city street!!"]
SEED = 42
MERGES = 490
LORA_RANK, LORA_ALPHA = 4, 8.0

UNET = dict(
    sample_size=8, in_channels=4, out_channels=4, layers_per_block=1, block_out_channels=(16, 32),
    down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"), up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
    cross_attention_dim=32, attention_head_dim=2, norm_num_groups=8, use_linear_projection=False,
)
VAE = dict(
    in_channels=3, out_channels=3, latent_channels=4, block_out_channels=(8, 8, 16, 16), layers_per_block=1,
    down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4, norm_num_groups=8,
    sample_size=64, scaling_factor=0.18215,
)
PNDM = {"_class_name": "PNDMScheduler", "_diffusers_version": "0.6.0", "beta_end": 0.012,
        "beta_schedule": "scaled_linear", "beta_start": 0.00085, "num_train_timesteps": 1000,
        "set_alpha_to_one": False, "skip_prk_steps": True, "steps_offset": 1, "trained_betas": None,
        "clip_sample": False}
SD_INDEX = {"_class_name": "StableDiffusionPipeline", "_diffusers_version": "0.42.1",
            "feature_extractor": [None, None], "image_encoder": [None, None], "requires_safety_checker": False,
            "safety_checker": [None, None], "scheduler": ["diffusers", "PNDMScheduler"],
            "text_encoder": ["transformers", "CLIPTextModel"], "tokenizer": ["transformers", "CLIPTokenizer"],
            "unet": ["diffusers", "UNet2DConditionModel"], "vae": ["diffusers", "AutoencoderKL"]}
# stabilityai/stable-diffusion-xl-base-1.0 scheduler/scheduler_config.json
SDXL_BASE_SCHEDULER = {"_class_name": "EulerDiscreteScheduler", "_diffusers_version": "0.19.0.dev0",
                       "beta_end": 0.012, "beta_schedule": "scaled_linear", "beta_start": 0.00085,
                       "clip_sample": False, "interpolation_type": "linear", "num_train_timesteps": 1000,
                       "prediction_type": "epsilon", "sample_max_value": 1.0, "set_alpha_to_one": False,
                       "skip_prk_steps": True, "steps_offset": 1, "timestep_spacing": "leading",
                       "trained_betas": None, "use_karras_sigmas": False}
SDXL_INDEX = {"_class_name": "StableDiffusionXLPipeline", "_diffusers_version": "0.19.0.dev0",
              "force_zeros_for_empty_prompt": True, "scheduler": ["diffusers", "EulerDiscreteScheduler"],
              "text_encoder": ["transformers", "CLIPTextModel"],
              "text_encoder_2": ["transformers", "CLIPTextModelWithProjection"],
              "tokenizer": ["transformers", "CLIPTokenizer"], "tokenizer_2": ["transformers", "CLIPTokenizer"],
              "unet": ["diffusers", "UNet2DConditionModel"], "vae": ["diffusers", "AutoencoderKL"]}


def write_json(obj, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=2, sort_keys=True) + "\n")


def write_tokenizer(dst: Path) -> int:
    """The CLIP BPE cut to its first MERGES merges: ids 0-511 the byte alphabet (plain and </w>), 512... the merges'
    results, then <|startoftext|> and <|endoftext|>. Returns the vocabulary size."""
    vocab = json.loads((REPO_ROOT / "assets" / "clip-bpe" / "vocab.json").read_text())
    lines = (REPO_ROOT / "assets" / "clip-bpe" / "merges.txt").read_text().split("\n")
    merges = lines[1:1 + MERGES]
    tiny = {t: i for t, i in vocab.items() if i < 512 + MERGES}
    assert len(tiny) == 512 + MERGES
    for a_b in merges:
        a, b = a_b.split(" ")
        assert tiny.get(a + b) is not None, a_b
    tiny["<|startoftext|>"] = 512 + MERGES
    tiny["<|endoftext|>"] = 512 + MERGES + 1
    dst.mkdir(parents=True, exist_ok=True)
    (dst / "vocab.json").write_text(json.dumps(tiny, ensure_ascii=False))
    (dst / "merges.txt").write_text("\n".join([lines[0]] + merges) + "\n")
    special = {"bos_token": "<|startoftext|>", "eos_token": "<|endoftext|>", "pad_token": "<|endoftext|>",
               "unk_token": "<|endoftext|>"}
    write_json(special, dst / "special_tokens_map.json")
    write_json(dict(special, model_max_length=77, do_lower_case=True, tokenizer_class="CLIPTokenizer",
                    add_prefix_space=False, errors="replace"), dst / "tokenizer_config.json")
    return len(tiny)


def build_sd_folder(out: Path) -> None:
    model = out / "model"
    if model.exists():
        shutil.rmtree(model)
    vocab_size = write_tokenizer(model / "tokenizer")
    write_json(SD_INDEX, model / "model_index.json")
    write_json(PNDM, model / "scheduler" / "scheduler_config.json")
    te_config = CLIPTextConfig(vocab_size=vocab_size, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                               num_attention_heads=4, max_position_embeddings=77, hidden_act="quick_gelu",
                               bos_token_id=vocab_size - 2, eos_token_id=vocab_size - 1, pad_token_id=vocab_size - 1,
                               projection_dim=32)
    parts = [("text_encoder", CLIPTextModel(te_config), 1), ("unet", UNet2DConditionModel(**UNET), 2),
             ("vae", AutoencoderKL(**VAE), 3), ("unet_lcm", UNet2DConditionModel(**UNET, time_cond_proj_dim=32), 2)]
    for name, module, seed in parts:
        (randomise_clip_ if name == "text_encoder" else randomise_conv_)(module, torch.Generator().manual_seed(seed))
        target = out / name if name == "unet_lcm" else model / name
        if target.exists():
            shutil.rmtree(target)
        module.to(torch.float16).save_pretrained(target, safe_serialization=True)
        print(f"[{name}] {sum(p.numel() for p in module.parameters()):,} params")


def lora_targets(unet: UNet2DConditionModel) -> list[str]:
    keep = ("to_q", "to_k", "to_v", "to_out.0", "ff.net.0.proj", "ff.net.2", "proj_in", "proj_out", "conv1", "conv2",
            "time_emb_proj")
    return [n for n, m in unet.named_modules() if isinstance(m, (nn.Linear, nn.Conv2d)) and n.endswith(keep)
            and (".attentions." in n or ".resnets." in n)]


def write_lora(out: Path, unet: UNet2DConditionModel) -> list[str]:
    modules = dict(unet.named_modules())
    sd = {}
    paths = lora_targets(unet)
    for i, path in enumerate(paths):
        w = modules[path].weight
        g = torch.Generator().manual_seed(100 + i)
        down = 0.1 * torch.randn((LORA_RANK,) + tuple(w.shape[1:]), generator=g)
        up = 0.1 * torch.randn((w.shape[0], LORA_RANK) + (1,) * (w.dim() - 2), generator=g)
        key = "lora_unet_" + path.replace(".", "_")
        sd[key + ".lora_down.weight"] = down.contiguous()
        sd[key + ".lora_up.weight"] = up.contiguous()
        sd[key + ".alpha"] = torch.tensor(LORA_ALPHA)
    (out / "lcm_lora").mkdir(parents=True, exist_ok=True)
    save_file(sd, str(out / "lcm_lora" / "pytorch_lora_weights.safetensors"))
    return paths


def stored_key(key: str, steps: int) -> bool:
    """Per-step tensors of long runs at steps 0, 9, 19, ... and the last only (the file stays small); the
    latents after each step are checked here (callback vs final) and not stored."""
    if not key.split(".")[-1].isdigit():
        return True
    i = int(key.split(".")[-1])
    if key.startswith("latents."):
        return False
    return steps <= 4 or i == 0 or i % 10 == 9 or i == steps - 1


RECORDER_KEYS = {"context_key": "context", "pooled_key": "text_embeds"}


def build_case(pipe, name, prompts, steps, guidance, out_dir: Path) -> dict[str, torch.Tensor]:
    return build_pipeline_case(pipe, name, prompts, steps, guidance, out_dir, recorder_keys=RECORDER_KEYS,
                               keep=lambda k: stored_key(k, steps),
                               generator="scripts/reference/make_sd_pipeline_fixtures.py")


def sd_pipeline(out: Path, unet_folder: Path | None = None) -> StableDiffusionPipeline:
    kwargs = {}
    if unet_folder is not None:
        kwargs["unet"] = UNet2DConditionModel.from_pretrained(unet_folder, torch_dtype=torch.float32)
    pipe = StableDiffusionPipeline.from_pretrained(out / "model", torch_dtype=torch.float32, safety_checker=None,
                                                   requires_safety_checker=False, **kwargs)
    pipe.scheduler = LCMScheduler.from_config(pipe.scheduler.config)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def sd_cases(out: Path, case_dir: Path, lora_paths: list[str]) -> dict[str, dict[str, torch.Tensor]]:
    cases = {}
    base = sd_pipeline(out)
    pipe = sd_pipeline(out)
    pipe.load_lora_weights(out / "lcm_lora")
    pipe.fuse_lora(lora_scale=1.0)
    pipe.unload_lora_weights()
    fused, plain = dict(pipe.unet.named_modules()), dict(base.unet.named_modules())
    unfused = [p for p in lora_paths if torch.equal(fused[p].weight, plain[p].weight)]
    if unfused:
        raise RuntimeError(f"diffusers did not fuse the LoRA into {unfused}")
    cases["lcm_lora_steps4"] = build_case(pipe, "lcm_lora_steps4", PROMPTS, 4, 1.5, case_dir)
    lcm = sd_pipeline(out, out / "unet_lcm")
    cases["lcm_distilled_steps4"] = build_case(lcm, "lcm_distilled_steps4", PROMPTS, 4, 8.0, case_dir)
    # LatentConsistencyModelPipeline (the LCM model card's pipeline) computes the same run.
    lcm_pipe = LatentConsistencyModelPipeline(**{k: v for k, v in lcm.components.items() if k != "requires_safety_checker"},
                                              requires_safety_checker=False)
    lcm_pipe.set_progress_bar_config(disable=True)
    same = lcm_pipe(prompt=PROMPTS, guidance_scale=8.0, num_inference_steps=4, output_type="latent",
                    generator=[torch.Generator().manual_seed(SEED + i) for i in range(len(PROMPTS))]).images
    diff = (same - cases["lcm_distilled_steps4"]["latents"]).abs().max().item()
    print(f"[lcm_distilled_steps4] LatentConsistencyModelPipeline vs StableDiffusionPipeline: max |diff| {diff}")
    if diff != 0.0:
        raise RuntimeError("LatentConsistencyModelPipeline and StableDiffusionPipeline differ on the LCM UNet")
    return cases


def sdxl_folder(default_model: Path, dst: Path, force_zeros: bool) -> Path:
    if dst.exists():
        shutil.rmtree(dst)
    shutil.copytree(default_model, dst)
    write_json(SDXL_BASE_SCHEDULER, dst / "scheduler" / "scheduler_config.json")
    write_json(dict(SDXL_INDEX, force_zeros_for_empty_prompt=force_zeros), dst / "model_index.json")
    return dst


def sdxl_cases(default_model: Path, work: Path, case_dir: Path) -> dict[str, dict[str, torch.Tensor]]:
    cases = {}
    for name, force_zeros, steps, guidance in (("sdxl_base_cfg_steps30", True, 30, 7.5),
                                               ("sdxl_empty_negative_steps2", False, 2, 5.0)):
        folder = sdxl_folder(default_model, work / name, force_zeros)
        pipe = StableDiffusionXLPipeline.from_pretrained(folder, torch_dtype=torch.float32, add_watermarker=False,
                                                         **load_text_encoders(folder))
        pipe.set_progress_bar_config(disable=True)
        check_loaded_weights(pipe, folder)
        assert pipe.config.force_zeros_for_empty_prompt == force_zeros
        cases[name] = build_case(pipe, name, PROMPTS[:1], steps, guidance, case_dir)
    return cases


CASES = [
    {"name": "lcm_lora_steps4", "model": "sd", "unet": None, "lora": "lcm_lora", "scheduler": "LCMScheduler",
     "prompts": PROMPTS, "steps": 4, "guidance": 1.5},
    {"name": "lcm_distilled_steps4", "model": "sd", "unet": "unet_lcm", "lora": None, "scheduler": "LCMScheduler",
     "prompts": PROMPTS, "steps": 4, "guidance": 8.0},
    {"name": "sdxl_base_cfg_steps30", "model": "sdxl", "force_zeros_for_empty_prompt": True, "prompts": PROMPTS[:1],
     "steps": 30, "guidance": 7.5},
    {"name": "sdxl_empty_negative_steps2", "model": "sdxl", "force_zeros_for_empty_prompt": False,
     "prompts": PROMPTS[:1], "steps": 2, "guidance": 5.0},
]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--model", type=Path, help="folder written by `mixdq default-model --random --output DIR`")
    src.add_argument("--mixdq", type=Path, help="the built mixdq binary: writes the default model to a temp folder")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = ap.parse_args()
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    print(f"torch {torch.__version__}  diffusers {diffusers.__version__}  transformers {transformers.__version__}")

    tmp = tempfile.TemporaryDirectory(prefix="mixdq-sd-fixtures-")
    work = Path(tmp.name)
    default_model = args.model
    if args.mixdq is not None:
        default_model = work / "default"
        subprocess.run([str(args.mixdq), "default-model", "--random", "--output", str(default_model)], check=True)
    default_model = default_model.resolve()

    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    for old in list(out.glob("*.safetensors")) + list(out.glob("*.png")):
        old.unlink()
    build_sd_folder(out)
    base_unet = UNet2DConditionModel.from_pretrained(out / "model" / "unet", torch_dtype=torch.float32)
    lora_paths = write_lora(out, base_unet)
    print(f"[lcm_lora] {len(lora_paths)} UNet modules")
    write_json(SDXL_BASE_SCHEDULER, out / "sdxl_base" / "scheduler_config.json")
    write_json(SDXL_INDEX, out / "sdxl_base" / "model_index.json")
    # The tokenizer is the one diffusers uses: check it loads as a CLIPTokenizer and round-trips a prompt.
    tok = CLIPTokenizer.from_pretrained(out / "model" / "tokenizer")
    print(f"[tokenizer] {len(tok)} tokens; '{PROMPTS[1]}' -> {tok(PROMPTS[1]).input_ids}")

    cases = sd_cases(out, out, lora_paths)
    cases.update(sdxl_cases(default_model, work, out))

    doc = {
        "generator": "scripts/reference/make_sd_pipeline_fixtures.py",
        "regenerate": "swift build -c release --product mixdq && .venv-reference/bin/python "
                      "scripts/reference/make_sd_pipeline_fixtures.py --mixdq .build/release/mixdq",
        "default_model_version": (default_model / "MIXDQ_DEFAULT_MODEL").read_text().strip(),
        "weights": {rel: {"sha256": sha256(default_model / rel), "bytes": (default_model / rel).stat().st_size}
                    for rel in WEIGHT_FILES},
        "seed": SEED,
        "cases": CASES,
        "versions": {"torch": torch.__version__, "diffusers": diffusers.__version__,
                     "transformers": transformers.__version__},
    }
    write_json(doc, out / "model.json")

    with tempfile.TemporaryDirectory() as again_dir:
        again = sd_cases(out, Path(again_dir), lora_paths)
        again.update(sdxl_cases(default_model, work, Path(again_dir)))
        worst = 0.0
        for name, t in cases.items():
            for k, v in again[name].items():
                worst = max(worst, (v.double() - t[k].double()).abs().max().item())
    print(f"[sd_pipeline_tiny] self-check: max |rerun - stored| = {worst}")
    for f in out.rglob("*"):
        if f.is_file():
            f.chmod(0o644)
    total = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
    print(f"total fixture bytes: {total:,}")
    tmp.cleanup()
    if worst != 0.0:
        print("SELF-CHECK FAILED", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
