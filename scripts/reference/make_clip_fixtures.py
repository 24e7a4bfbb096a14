#!/usr/bin/env python3
"""Generate the tiny CLIP text-encoder parity fixtures used by the Swift tests.

Writes:

    Tests/Fixtures/clip_tiny/text_encoder/{config.json, model.safetensors}     CLIPTextModel (SDXL TE1 shape)
    Tests/Fixtures/clip_tiny/text_encoder_2/{config.json, model.safetensors}   CLIPTextModelWithProjection (TE2 shape)
    Tests/Fixtures/clip_tiny/io_te1.safetensors    input_ids (I64) + transformers outputs (F32)
    Tests/Fixtures/clip_tiny/io_te2.safetensors

Both weight files carry the on-disk key names of the real SDXL checkpoints (`text_model.` prefix). transformers 5
drops that prefix when it saves a CLIPTextModel, so TE1's file is written here with the prefix put back and with the
int64 `text_model.embeddings.position_ids` buffer older checkpoints carry (the Swift loader must ignore it).
The self-check reloads both folders with `from_pretrained`, so the prefixed file is proven loadable.

Run once with the reference venv and commit the outputs; CI never needs torch:

    .venv-reference/bin/python scripts/reference/make_clip_fixtures.py

Deterministic (fixed seeds, one CPU thread); ends with a self-check that requires a max abs diff of exactly 0.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import torch
from torch import nn

import safetensors
import transformers
from safetensors.torch import load_file, save_file
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_OUT = REPO_ROOT / "Tests" / "Fixtures" / "clip_tiny"

COMMON = dict(num_attention_heads=4, num_hidden_layers=3, vocab_size=1000, max_position_embeddings=77,
              layer_norm_eps=1e-5, bos_token_id=0, pad_token_id=1, eos_token_id=2)  # eos 2: legacy argmax pooling
TE1 = dict(COMMON, hidden_size=32, intermediate_size=64, hidden_act="quick_gelu", projection_dim=32)
TE2 = dict(COMMON, hidden_size=48, intermediate_size=96, hidden_act="gelu", projection_dim=40)

# The non-legacy pooling rule (first position where id == eos_token_id) is checked against TE1's weights with
# eos_token_id = 500: an id below the row maximum, so the two rules pick different positions.
EOS_VARIANT = 500

BOS, EOS = 998, 999  # stand-ins for 49406 / 49407 in a 1000-token vocabulary (EOS is the largest id)


def make_input_ids(seed: int) -> torch.Tensor:
    """[2, 77] int64. Row 0 pads with EOS (tokenizer 1), so argmax must take the FIRST max; row 1 pads with 0
    (tokenizer 2). Both rows hold EOS_VARIANT before their EOS."""
    gen = torch.Generator().manual_seed(seed)
    rows = []
    for n_content, pad, variant_at in ((7, EOS, 3), (12, 0, 5)):
        content = torch.randint(3, EOS_VARIANT, (n_content,), generator=gen).tolist()
        content[variant_at] = EOS_VARIANT
        row = [BOS] + content + [EOS]
        rows.append(row + [pad] * (77 - len(row)))
    return torch.tensor(rows, dtype=torch.int64)


@torch.no_grad()
def randomise_(model: nn.Module, gen: torch.Generator) -> None:
    """Linear W ~ N(0, 1/fan_in), biases 0.1*N; LayerNorm weights 1 + 0.2*N, biases 0.2*N; embeddings 0.5*N.
    Visited in named_modules() order, so the result depends only on the seed and the config."""
    touched: set[int] = set()

    def fill(p: torch.Tensor, mean: float, std: float) -> None:
        p.copy_(torch.randn(p.shape, generator=gen, dtype=torch.float32) * std + mean)
        touched.add(id(p))

    for _, m in model.named_modules():
        if isinstance(m, nn.Linear):
            fill(m.weight, 0.0, 1.0 / math.sqrt(m.weight.shape[1]))
            if m.bias is not None:
                fill(m.bias, 0.0, 0.1)
        elif isinstance(m, nn.LayerNorm):
            fill(m.weight, 1.0, 0.2)
            fill(m.bias, 0.0, 0.2)
        elif isinstance(m, nn.Embedding):
            fill(m.weight, 0.0, 0.5)
    missed = [n for n, p in model.named_parameters() if id(p) not in touched]
    if missed:
        raise RuntimeError(f"parameters not randomised: {missed}")


def _f32(t: torch.Tensor) -> torch.Tensor:
    return t.detach().to(torch.float32).contiguous().clone()


@torch.no_grad()
def run(model: nn.Module, ids: torch.Tensor) -> dict[str, torch.Tensor]:
    out = model(input_ids=ids, output_hidden_states=True)
    result = {f"hidden_states.{i}": _f32(h) for i, h in enumerate(out.hidden_states)}
    result["last_hidden_state"] = _f32(out.last_hidden_state)
    if isinstance(model, CLIPTextModelWithProjection):
        result["text_embeds"] = _f32(out.text_embeds)
    else:
        result["pooler_output"] = _f32(out.pooler_output)
    return result


@torch.no_grad()
def eos_variant_pooled(folder: Path, ids: torch.Tensor) -> torch.Tensor:
    config = CLIPTextConfig.from_pretrained(folder)
    config.eos_token_id = EOS_VARIANT
    model = CLIPTextModel.from_pretrained(folder, config=config).eval()
    return _f32(model(input_ids=ids).pooler_output)


def build(name: str, cls, cfg: dict, seed: int, out: Path) -> None:
    folder = out / name
    torch.manual_seed(seed)
    model = cls(CLIPTextConfig(**cfg)).eval()
    randomise_(model, torch.Generator().manual_seed(seed))
    model.save_pretrained(folder, safe_serialization=True)
    wfile = folder / "model.safetensors"
    if cls is CLIPTextModel:
        # Put back the checkpoint key names (see the module docstring) and the legacy position_ids buffer.
        state = {("text_model." + k): v.contiguous() for k, v in load_file(str(wfile)).items()}
        state["text_model.embeddings.position_ids"] = torch.arange(cfg["max_position_embeddings"]).unsqueeze(0)
        save_file(state, str(wfile), metadata={"format": "pt"})
    keys = sorted(load_file(str(wfile)))
    assert all(k.startswith("text_model.") or k == "text_projection.weight" for k in keys), keys


def io_name(name: str) -> str:
    return {"text_encoder": "io_te1.safetensors", "text_encoder_2": "io_te2.safetensors"}[name]


@torch.no_grad()
def goldens(name: str, cls, out: Path, ids: torch.Tensor) -> dict[str, torch.Tensor]:
    # Reload what Swift will load: the goldens come from the files, not from the in-memory model.
    model = cls.from_pretrained(out / name).eval()
    result = run(model, ids)
    if cls is CLIPTextModel:
        result[f"pooler_output_eos{EOS_VARIANT}"] = eos_variant_pooled(out / name, ids)
    return result


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output folder (default: Tests/Fixtures/clip_tiny)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    print(f"torch {torch.__version__}  transformers {transformers.__version__}  safetensors {safetensors.__version__}")

    ids = make_input_ids(7)
    print("input_ids row 0:", ids[0, :12].tolist(), "... row 1:", ids[1, :16].tolist(), "...")
    print("legacy eos positions:", ids.to(torch.int).argmax(-1).tolist(),
          f"  eos={EOS_VARIANT} positions:", (ids == EOS_VARIANT).int().argmax(-1).tolist())
    specs = (("text_encoder", CLIPTextModel, TE1, 0), ("text_encoder_2", CLIPTextModelWithProjection, TE2, 1))
    for name, cls, cfg, seed in specs:
        build(name, cls, cfg, seed, args.out)
        result = goldens(name, cls, args.out, ids)
        save_file({"input_ids": ids, **result}, str(args.out / io_name(name)),
                  metadata={"generator": f"scripts/reference/make_clip_fixtures.py ({name})"})
        for k, v in result.items():
            print(f"    [{name}] {k:22s} {str(list(v.shape)):14s} max|x| {v.abs().max().item():8.4f}")

    worst = 0.0
    for name, cls, _, _ in specs:
        stored = load_file(str(args.out / io_name(name)))
        again = goldens(name, cls, args.out, stored["input_ids"])
        if set(again) != set(stored) - {"input_ids"}:
            raise RuntimeError(f"{name}: key mismatch")
        worst = max([worst] + [(v - stored[k]).abs().max().item() for k, v in again.items()])
    # hidden_states[-1] is the last layer's output before the final LayerNorm, not last_hidden_state.
    te1 = load_file(str(args.out / "io_te1.safetensors"))
    assert not torch.equal(te1["hidden_states.3"], te1["last_hidden_state"])
    total = sum(f.stat().st_size for f in args.out.rglob("*") if f.is_file())
    print(f"self-check: max |recomputed - stored| = {worst}   total fixture bytes: {total:,}")
    return 0 if worst == 0.0 else 1


if __name__ == "__main__":
    sys.exit(main())
