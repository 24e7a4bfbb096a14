#!/usr/bin/env python3
"""Convert the original MixDQ's files (PyTorch pickles) into mixdq's typed formats.

    python scripts/convert/from_original.py ckpt  --ckpt logs/X/ckpt.pth [--config logs/X/config.yaml] --out OUT/ckpt.safetensors
    python scripts/convert/from_original.py calib --calib sdxl_turbo_calib.pt --out OUT/calib.h5

Run it with the reference venv (torch, safetensors, h5py, PyYAML): scripts/reference/setup_venv.sh.

ckpt: the original's `ptq.py` output (`torch.save(qnn.get_quant_params_dict())`): a dict
  {quantizer module name: [buffers OrderedDict, parameters OrderedDict]}, names relative to the UNet
  (`down_blocks.0.resnets.0.conv1.weight_quantizer`, `...conv_shortcut.act_quantizer_0`), buffers
  `delta_list` / `zero_point_list` of shape [B, C_out, 1(, 1, 1)] (weights) or [B, 1, ...] (activations)
  with B = len(mixed_precision), plus `delta`, `zero_point`, `alpha`. The never-called attention
  quantizers `act_quantizer_q/k/v` (empty `delta_list`, `delta` None) are skipped. Written as the
  safetensors file `mixdq ptq` writes (Sources/MixDQQuant/QuantCheckpoint.swift): `<layer>.<quantizer>
  .delta_list` [B, C_out] / [B] float32, rows in ascending bit order, metadata `format`, `bit_widths`,
  `weight_symmetric`, `ema_compat_repeat` (true: the original's repeated EMA update), `bos_aware`.
  Bit widths and symmetry come from the original's config.yaml (the copy ptq.py leaves beside ckpt.pth,
  or --config); --bit-widths / --weight-sym override. A config without mixed_precision (lcm_lora.yaml)
  made quantizers with only `delta` / `zero_point` for n_bits: those become one row. The config is copied beside the output when the
  output folder has none, so `mixdq infer --base-path OUT` finds both.

calib: the original's `gen_calib_data.py` output: a dict `prompts` (list of str), `ts` [T, N], `xs`
  [T, R, C, h, w], `text_embs` [T, R, L, D], optionally `outputs` [T, R, C, h, w] (newer versions) and
  `added_cond_kwargs` {`text_embeds` [T, R, P], `time_ids` [T, R, 6]} (SDXL). R = N rows, or 2N with
  classifier-free guidance (per batch: unconditional rows, then conditional ones; the original's `ts`
  then has half the rows, and is broadcast here since a step has one timestep). Written as the HDF5
  file `mixdq calib-data` writes (Sources/MixDQPipeline/CalibrationDataGenerator.swift).

Every output is written under a temporary name and renamed when complete. A file not in these layouts
is an error naming the file, the key or quantizer and what was found; exit status 1.
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path

import numpy as np

QUANT_FORMAT = "mixdq-quant/1"
QUANTIZER_SUFFIXES = ("weight_quantizer", "weight_quantizer_0", "act_quantizer", "act_quantizer_0")
UNUSED_ATTENTION_QUANTIZERS = ("act_quantizer_q", "act_quantizer_k", "act_quantizer_v")


class ConversionError(Exception):
    pass


def torch_load(path: Path):
    import torch

    if not path.is_file():
        raise ConversionError(f"{path}: no such file")
    try:
        # weights_only: tensors, dicts, lists, OrderedDicts and strings only; no code runs.
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises several types (pickle, zip, RuntimeError)
        raise ConversionError(f"{path}: cannot be read by torch.load(weights_only=True): {str(e).splitlines()[0]}") from e


def write_atomically(out: Path, write) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".partial")
    try:
        write(tmp)
        os.replace(tmp, out)
    finally:
        if tmp.exists():
            tmp.unlink()


# ----------------------------------------------------------------------------------------------
# Quant checkpoint


def read_settings(config: Path | None, bit_widths: str | None, weight_sym: str | None):
    """(bits in the checkpoint's row order, sorted bits, weight symmetric, bos_aware, single): `single` when
    the config has no mixed_precision, so the quantizers hold only `delta` / `zero_point` for n_bits."""
    mp = sym = None
    single = False
    bos = False
    n_bits = []
    if config is not None:
        import yaml

        try:
            cfg = yaml.safe_load(config.read_text())
        except Exception as e:
            raise ConversionError(f"{config}: not a readable YAML config ({e})") from e
        try:
            quant = cfg["quant"]
            wq, aq = quant["weight"]["quantizer"], quant["activation"]["quantizer"]
            n_bits = [int(wq["n_bits"]), int(aq["n_bits"])]
        except (KeyError, TypeError) as e:
            raise ConversionError(f"{config}: missing key {e} (expected the original's quant.weight/activation.quantizer.n_bits)") from e
        mp = cfg.get("mixed_precision")
        if mp is None and bit_widths is None:
            if n_bits[0] != n_bits[1]:
                raise ConversionError(f"{config}: no mixed_precision and weights at {n_bits[0]} bits, activations at {n_bits[1]}: "
                                      "the original then stores one width per quantizer, mixdq every width for every quantizer")
            mp, single = [n_bits[0]], True
        sym = bool(wq.get("sym", False))  # the original's default: asymmetric
        bos = bool(aq.get("bos_aware", False))
    if bit_widths is not None:
        mp = [int(b) for b in bit_widths.split(",")]
    if weight_sym is not None:
        sym = weight_sym.lower() in ("1", "true", "yes")
    if mp is None or sym is None:
        raise ConversionError("the bit widths and weight symmetry come from the original's config.yaml: pass --config "
                              "(ptq.py copies it beside ckpt.pth), or --bit-widths 2,4,8 and --weight-sym true|false")
    if not isinstance(mp, list) or not all(isinstance(b, int) and 2 <= b <= 8 for b in mp) or len(set(mp)) != len(mp):
        raise ConversionError(f"mixed_precision must be distinct bit widths in 2...8, got {mp}")
    for b in n_bits:
        if b not in mp:
            raise ConversionError(f"{config}: n_bits {b} is not in mixed_precision {mp} (the original cannot have made this checkpoint)")
    return mp, sorted(mp), sym, bos, single


def split_name(name: str):
    """'down_blocks.0.resnets.0.conv1.weight_quantizer' -> ('down_blocks.0.resnets.0.conv1', 'weight_quantizer')."""
    if name.startswith("model."):
        name = name[len("model."):]
    layer, _, quantizer = name.rpartition(".")
    return layer, quantizer


def as_array(value, what: str):
    import torch

    if not isinstance(value, torch.Tensor):
        raise ConversionError(f"{what} is {type(value).__name__}, expected a tensor")
    if not (value.dtype.is_floating_point or value.dtype in (torch.int32, torch.int64)):
        raise ConversionError(f"{what} has dtype {value.dtype}, expected a float tensor")
    return value.detach().to(torch.float64).numpy()


def convert_quantizer(ckpt: Path, name: str, entry, row_bits, sym: bool, weight: bool, single: bool = False):
    """delta and zero-point lists [B, C] (weights) or [B] (activations), rows in row_bits order."""
    where = f"{ckpt}: quantizer '{name}'"
    if not isinstance(entry, (list, tuple)) or len(entry) != 2 or not all(isinstance(d, dict) for d in entry):
        raise ConversionError(f"{where}: expected [buffers dict, parameters dict], found {type(entry).__name__}"
                              + (f" of length {len(entry)}" if isinstance(entry, (list, tuple)) else ""))
    buffers, params = entry
    if any(v is not None for v in params.values()):
        raise ConversionError(f"{where}: has learned parameters {sorted(params)}; only the original's PTQ (no reconstruction) is supported")
    if buffers.get("alpha") is not None:
        raise ConversionError(f"{where}: has an AdaRound 'alpha' buffer; learned rounding is not supported")
    keys = ("delta", "zero_point") if single else ("delta_list", "zero_point_list")
    missing = [k for k in keys if buffers.get(k) is None]
    if missing:
        kind = "without mixed_precision" if single else "with mixed_precision"
        raise ConversionError(f"{where}: no {' or '.join(missing)} (a checkpoint made {kind} holds {' and '.join(keys)}; found {sorted(buffers)})")
    delta = as_array(buffers[keys[0]], f"{where}: {keys[0]}")
    zero = as_array(buffers[keys[1]], f"{where}: {keys[1]}")
    if single:  # [C_out, 1, ...] or [1, ...] -> one row
        delta, zero = delta[None], zero[None]
    nb = len(row_bits)
    if delta.ndim < (2 if weight else 1) or delta.shape[0] != nb:
        raise ConversionError(f"{where}: delta_list has shape {list(delta.shape)}, expected [{nb}, ...] (one row per bit width {row_bits})")
    if zero.shape != delta.shape:
        raise ConversionError(f"{where}: zero_point_list has shape {list(zero.shape)}, delta_list {list(delta.shape)}")
    if weight:
        if any(d != 1 for d in delta.shape[2:]):
            raise ConversionError(f"{where}: delta_list has shape {list(delta.shape)}, expected [{nb}, C_out, 1, ...] (per output channel)")
        delta, zero = delta.reshape(nb, delta.shape[1]), zero.reshape(nb, delta.shape[1])
    else:
        if any(d != 1 for d in delta.shape[1:]):
            raise ConversionError(f"{where}: delta_list has shape {list(delta.shape)}, expected [{nb}, 1, ...] (one scale per tensor)")
        delta, zero = delta.reshape(nb), zero.reshape(nb)
    if not np.all(np.isfinite(delta)) or not np.all(delta > 0):
        raise ConversionError(f"{where}: delta_list holds a scale that is not positive and finite")
    if not np.all(np.isfinite(zero)) or not np.all(zero == np.round(zero)):
        raise ConversionError(f"{where}: zero_point_list holds a value that is not an integer")
    for row, b in enumerate(row_bits):
        lo, hi = (0, 0) if weight and sym else (0, 2 ** b - 1)
        z = zero.reshape(nb, -1)[row]
        if z.min() < lo or z.max() > hi:
            kind = "symmetric weights need 0" if weight and sym else f"must lie in {lo}...{hi}"
            raise ConversionError(f"{where}: zero point {z.min() if z.min() < lo else z.max()} for {b} bits ({kind})")
    order = [row_bits.index(b) for b in sorted(row_bits)]
    return delta[order].astype(np.float32), zero[order].astype(np.float32)


def convert_checkpoint(ckpt: Path, out: Path, config: Path | None, bit_widths: str | None, weight_sym: str | None) -> int:
    from safetensors.numpy import save_file

    if config is None and (ckpt.parent / "config.yaml").is_file():
        config = ckpt.parent / "config.yaml"
    row_bits, bits, sym, bos, single = read_settings(config, bit_widths, weight_sym)
    data = torch_load(ckpt)
    if not isinstance(data, dict):
        raise ConversionError(f"{ckpt}: holds a {type(data).__name__}, expected the original's dict {{quantizer name: [buffers, parameters]}}")
    tensors: dict[str, np.ndarray] = {}
    layers: dict[str, set] = {}
    skipped = 0
    for name, entry in data.items():
        if not isinstance(name, str):
            raise ConversionError(f"{ckpt}: key {name!r} is not a quantizer name")
        layer, quantizer = split_name(name)
        if quantizer in UNUSED_ATTENTION_QUANTIZERS:
            # Created by QuantTransformerBlock but never called: nothing calibrated, nothing to carry over.
            buffers = entry[0] if isinstance(entry, (list, tuple)) and entry and isinstance(entry[0], dict) else None
            empty = buffers is not None and all(v is None or getattr(v, "numel", lambda: 1)() == 0 for v in buffers.values())
            if not empty:
                raise ConversionError(f"{ckpt}: quantizer '{name}' holds calibrated parameters; mixdq does not quantize attention "
                                      "matmuls (the original never calls these quantizers)")
            skipped += 1
            continue
        if quantizer not in QUANTIZER_SUFFIXES or not layer:
            raise ConversionError(f"{ckpt}: key '{name}' is not a quantizer of the original's layout "
                                  f"(<layer path>.{{{','.join(QUANTIZER_SUFFIXES + UNUSED_ATTENTION_QUANTIZERS)}}})")
        delta, zero = convert_quantizer(ckpt, name, entry, row_bits, sym, quantizer.startswith("weight"), single)
        key = f"{layer}.{quantizer}"
        if f"{key}.delta_list" in tensors:
            raise ConversionError(f"{ckpt}: quantizer '{key}' given twice (with and without the 'model.' prefix)")
        tensors[f"{key}.delta_list"] = delta
        tensors[f"{key}.zero_point_list"] = zero
        layers.setdefault(layer, set()).add(quantizer)
    for layer, have in sorted(layers.items()):
        for w, a in (("weight_quantizer", "act_quantizer"), ("weight_quantizer_0", "act_quantizer_0")):
            if (w in have) != (a in have):
                raise ConversionError(f"{ckpt}: layer '{layer}' has {w if w in have else a} but no {a if w in have else w}")
    if not layers:
        raise ConversionError(f"{ckpt}: no weight or activation quantizers")
    metadata = {
        "format": QUANT_FORMAT,
        "bit_widths": ",".join(str(b) for b in bits),
        "weight_symmetric": "true" if sym else "false",
        "ema_compat_repeat": "true",
        "bos_aware": "true" if bos else "false",
        "converted_from": ckpt.name,
        "converter": "scripts/convert/from_original.py",
    }
    write_atomically(out, lambda tmp: save_file(tensors, str(tmp), metadata=metadata))
    if config is not None and not (out.parent / "config.yaml").exists():
        write_atomically(out.parent / "config.yaml", lambda tmp: shutil.copyfile(config, tmp))
        print(f"copied {config} to {out.parent / 'config.yaml'}")
    print(f"{out}: {len(layers)} layers, bit widths {bits}, weights {'symmetric' if sym else 'asymmetric'} "
          f"({skipped} unused attention quantizer(s) skipped)")
    return 0


# ----------------------------------------------------------------------------------------------
# Calibration data


def convert_calibration(calib: Path, out: Path) -> int:
    import h5py
    import torch

    data = torch_load(calib)
    if not isinstance(data, dict):
        raise ConversionError(f"{calib}: holds a {type(data).__name__}, expected the original's dict prompts/ts/xs/text_embs/...")
    known = {"prompts", "ts", "xs", "outputs", "text_embs", "added_cond_kwargs"}
    unknown = sorted(str(k) for k in data if k not in known)
    if unknown:
        raise ConversionError(f"{calib}: unknown key(s) {unknown} (the original's calibration file holds {sorted(known)})")
    for key in ("prompts", "ts", "xs", "text_embs"):
        if key not in data:
            raise ConversionError(f"{calib}: missing key '{key}'")
    prompts = data["prompts"]
    if not isinstance(prompts, list) or not all(isinstance(p, str) for p in prompts):
        raise ConversionError(f"{calib}: 'prompts' is not a list of strings")

    def tensor(key: str, value, ndim: int) -> np.ndarray:
        if not isinstance(value, torch.Tensor):
            raise ConversionError(f"{calib}: '{key}' is {type(value).__name__}, expected a tensor")
        if value.ndim != ndim:
            raise ConversionError(f"{calib}: '{key}' has shape {list(value.shape)}, expected {ndim} dimensions")
        arr = value.detach().to(torch.float32).numpy()
        if not np.all(np.isfinite(arr)):
            raise ConversionError(f"{calib}: '{key}' holds NaN or infinite values")
        return arr

    xs = tensor("xs", data["xs"], 5)
    steps, rows = xs.shape[:2]
    datasets = {"xs": xs}
    if "outputs" in data:
        datasets["outputs"] = tensor("outputs", data["outputs"], 5)
    datasets["text_embs"] = tensor("text_embs", data["text_embs"], 4)
    added = data.get("added_cond_kwargs")
    if added is not None:
        if not isinstance(added, dict) or sorted(added) != ["text_embeds", "time_ids"]:
            raise ConversionError(f"{calib}: 'added_cond_kwargs' must be a dict of 'text_embeds' and 'time_ids', "
                                  f"found {sorted(added) if isinstance(added, dict) else type(added).__name__}")
        datasets["added_cond_kwargs/text_embeds"] = tensor("added_cond_kwargs.text_embeds", added["text_embeds"], 3)
        datasets["added_cond_kwargs/time_ids"] = tensor("added_cond_kwargs.time_ids", added["time_ids"], 3)
        if datasets["added_cond_kwargs/time_ids"].shape[2] != 6:
            raise ConversionError(f"{calib}: 'added_cond_kwargs.time_ids' has shape "
                                  f"{list(datasets['added_cond_kwargs/time_ids'].shape)}, expected [T, rows, 6]")
    for key, arr in datasets.items():
        if arr.shape[:2] != (steps, rows):
            raise ConversionError(f"{calib}: '{key}' has shape {list(arr.shape)}, expected [{steps}, {rows}, ...] like 'xs'")
    if "outputs" in datasets and datasets["outputs"].shape != xs.shape:
        raise ConversionError(f"{calib}: 'outputs' has shape {list(datasets['outputs'].shape)}, 'xs' {list(xs.shape)}")

    ts = tensor("ts", data["ts"], 2)
    cfg = rows == 2 * len(prompts) and rows > 0
    if not cfg and rows != len(prompts):
        raise ConversionError(f"{calib}: 'xs' has {rows} rows for {len(prompts)} prompts (expected one row per prompt, or two with guidance)")
    if ts.shape[0] != steps:
        raise ConversionError(f"{calib}: 'ts' has shape {list(ts.shape)}, expected [{steps}, ...] (one row per step of 'xs')")
    if ts.shape[1] != rows:
        # The original records one timestep per prompt while guidance doubles the UNet rows.
        if not (cfg and ts.shape[1] == len(prompts)):
            raise ConversionError(f"{calib}: 'ts' has shape {list(ts.shape)}, expected [{steps}, {rows}] (or [{steps}, {len(prompts)}] with guidance)")
        if not np.all(ts == ts[:, :1]):
            raise ConversionError(f"{calib}: 'ts' differs within a step; cannot align it with the {rows} guidance rows")
        ts = np.repeat(ts[:, :1], rows, axis=1)
    datasets["ts"] = ts

    def write(tmp: Path) -> None:
        with h5py.File(tmp, "w") as f:
            for key in ("xs", "outputs", "ts", "text_embs", "added_cond_kwargs/text_embeds", "added_cond_kwargs/time_ids"):
                if key in datasets:
                    f.create_dataset(key, data=datasets[key], dtype="<f4")
            f.create_dataset("prompts", data=prompts, dtype=h5py.string_dtype("utf-8"))
            f.attrs["rows"] = ("per batch: unconditional rows (zero conditioning) then conditional rows" if cfg
                               else "one row per prompt")
            f.attrs["converted_from"] = calib.name

    write_atomically(out, write)
    note = "" if "outputs" in datasets else "; no 'outputs' (made by an older gen_calib_data.py): `search sensitivity`'s SQNR needs them"
    print(f"{out}: {steps} step(s) x {rows} row(s), {len(prompts)} prompts{', guidance rows' if cfg else ''}{note}")
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="what", required=True)
    c = sub.add_parser("ckpt", help="the original's ckpt.pth -> ckpt.safetensors")
    c.add_argument("--ckpt", type=Path, required=True)
    c.add_argument("--out", type=Path, required=True)
    c.add_argument("--config", type=Path, help="the original's config.yaml (default: the one beside --ckpt)")
    c.add_argument("--bit-widths", help="the checkpoint's rows, in its order (the config's mixed_precision), e.g. 2,4,8")
    c.add_argument("--weight-sym", help="true|false (the config's quant.weight.quantizer.sym)")
    k = sub.add_parser("calib", help="the original's calibration .pt -> HDF5")
    k.add_argument("--calib", type=Path, required=True)
    k.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    try:
        if args.what == "ckpt":
            return convert_checkpoint(args.ckpt, args.out, args.config, args.bit_widths, args.weight_sym)
        return convert_calibration(args.calib, args.out)
    except ConversionError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
