"""Fixtures in the original MixDQ's file layouts, for the .pt act-protect reader and the converter.

Writes Tests/Fixtures/original/ (see Tests/Fixtures/README.md, section original/):

* `act_sensitivie_a8_1%.pt`: `torch.save` of the original's 9 act-protect names (mixdq-method.md §6.4,
  `model.` prefix), exactly as the original ships it; `.json` beside it holds the same list.
* `list_protocol4.pt` (`pickle_protocol=4`: framing, short strings, MEMOIZE) and `list_repeated.pt`
  (one str object twice: the second is a memo reference), each with its `.json`.
* `act_protect_tiny.pt` / `.yaml`: the same list of layers of the embedded random tiny model in both formats.
* `hostile/`: torch.save files that are not a list of str: a dict, a list of ints, a tensor, a nested
  list, a tuple, a list holding None, the legacy (non-zip) format.
* `config.yaml`: configs/sdxl_turbo.yaml with a 4-prompt calibration set (paths relative to it).
* `ptq_source/ckpt.safetensors`, `calib_source.h5`: made by our `mixdq calib-data` and `mixdq ptq` on the
  random tiny model (metadata and attributes that held this machine's paths removed).
* `calib.pt`: the calibration file written in the original's layout by an independent reverse mapping
  (below), with torch.save; the checkpoint likewise as `ckpt.pth` (in a temporary folder: 1 MB, not
  committed; scripts/convert/test_from_original.py rebuilds it with `original_checkpoint`).
* `converted/ckpt.safetensors`, `calib_converted.h5`: scripts/convert/from_original.py's output for them.
  The committed checkpoint has one bit width (`mixed_precision: [8]`, to keep the folder under 2 MB);
  the original's `[2, 4, 8]` is round-tripped the same way in the temporary folder.
  The script checks here that every tensor, prompt and shape came back unchanged (max abs diff 0);
  the Swift tests then check that `infer` / `ptq` give the same images / parameters from them.

Run from the repository root:
    swift build -c release --product mixdq
    .venv-reference/bin/python scripts/reference/make_original_artefact_fixtures.py --mixdq .build/release/mixdq
"""
from __future__ import annotations

import argparse
import collections
import hashlib
import json
import os
import pickle
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import h5py
import numpy as np
import torch
from safetensors.numpy import load_file, save_file
from safetensors import safe_open

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "Tests" / "Fixtures" / "original"
sys.path.insert(0, str(ROOT / "scripts" / "convert"))
import from_original  # noqa: E402

# mixdq-method.md §6.4: the 9 layers of the original's act_sensitivie_a8_1%.pt, content first.
ORIGINAL_ACT_PROTECT = [
    "model.down_blocks.2.attentions.1.transformer_blocks.5.ff.net.2",
    "model.down_blocks.2.attentions.1.transformer_blocks.6.ff.net.2",
    "model.down_blocks.2.attentions.1.transformer_blocks.7.ff.net.2",
    "model.down_blocks.2.attentions.1.transformer_blocks.8.ff.net.2",
    "model.up_blocks.0.attentions.0.transformer_blocks.0.ff.net.2",
    "model.conv_in",
    "model.conv_out",
    "model.down_blocks.0.resnets.0.conv2",
    "model.up_blocks.2.resnets.2.conv_shortcut",
]
# The committed set uses one bit width (8): three rows would triple the two checkpoints past the
# fixture budget. The original's [2, 4, 8] layout is round-tripped here too (not committed), and
# scripts/convert/test_from_original.py covers three rows and their reordering.
COMMITTED_BITS = [8]
FULL_BITS = [2, 4, 8]
ACTIVE_BIT = 8  # n_bits of the config: the slice ptq.py leaves in `delta` / `zero_point`


def run(cmd, env):
    print("+", " ".join(str(c) for c in cmd), flush=True)
    subprocess.run([str(c) for c in cmd], check=True, env=env)


def write_config(path: Path, calib_name: str, bits) -> None:
    """configs/sdxl_turbo.yaml with a small calibration set and `bits` as mixed_precision; paths
    relative to `path`'s folder."""
    text = (ROOT / "configs" / "sdxl_turbo.yaml").read_text()
    text = text.replace("mixed_precision: [2,4,8]", f"mixed_precision: [{','.join(str(b) for b in bits)}]")
    captions = os.path.relpath(ROOT / "assets" / "coco" / "captions_mixdq_default.json", path.parent)
    repl = {"path": f'"{calib_name}"', "n_samples": "4", "batch_size": "2", "captions": f'"{captions}"'}
    lines, section = [], ""
    for raw in text.split("\n"):
        if raw and not raw[0].isspace() and not raw.startswith("#"):
            section = raw.split(":")[0]
        m = re.match(r"^(\s+)(\w+):", raw)
        if section == "calib_data" and m and m.group(2) in repl:
            raw = f"{m.group(1)}{m.group(2)}: {repl[m.group(2)]}"
        lines.append(raw)
    path.write_text("\n".join(lines))


# ---- the reverse mapping: our checkpoint -> the original's get_quant_params_dict() layout ----------


def original_checkpoint(ours: Path, weight_ndim: dict, bits) -> dict:
    """{quantizer name: [buffers OrderedDict, parameters OrderedDict]} as ptq.py's torch.save writes it
    (`weight_ndim`: layer path -> rank of its weight, 4 for convs, 2 for linears)
    (mixdq-method.md §5): conv weights [3, Co, 1, 1, 1], linear weights [3, Co, 1], activations of conv
    inputs [3, 1, 1, 1, 1], of 3-D transformer inputs [3, 1, 1, 1], of 2-D embedding inputs [3, 1, 1];
    `delta` / `zero_point` the 8-bit slice, `alpha` None; the unused act_quantizer_q/k/v of every attention."""
    tensors = load_file(str(ours))
    out = collections.OrderedDict()
    quantizers = sorted({k.rsplit(".", 1)[0] for k in tensors})
    for q in quantizers:
        layer, kind = q.rsplit(".", 1)
        delta, zero = tensors[f"{q}.delta_list"], tensors[f"{q}.zero_point_list"]
        if kind.startswith("weight"):
            trailing = [1, 1, 1] if weight_ndim[layer] == 4 else [1]
            shape = [len(bits), delta.shape[1]] + trailing
        else:
            if weight_ndim[layer] == 4:
                trailing = [1, 1, 1, 1]
            elif layer.startswith(("time_embedding.", "add_embedding.")) or layer.endswith("time_emb_proj"):
                trailing = [1, 1]
            else:
                trailing = [1, 1, 1]
            shape = [len(bits)] + trailing
        d = torch.from_numpy(delta.copy()).reshape(shape)
        z = torch.from_numpy(zero.copy()).reshape(shape)
        k = bits.index(ACTIVE_BIT)
        # As in BaseQuantizer.forward: `delta` is a view of the active row (one storage saved).
        buffers = collections.OrderedDict(delta_list=d, zero_point_list=z, delta=d[k], zero_point=z[k], alpha=None)
        out[q] = [buffers, collections.OrderedDict()]
    attentions = sorted({m.group(0) for k in tensors for m in [re.match(r"^.*\.transformer_blocks\.\d+\.attn[12]", k)] if m})
    for a in attentions:
        for s in "qkv":
            empty = collections.OrderedDict(delta_list=torch.tensor([]), zero_point_list=torch.tensor([]),
                                            delta=None, zero_point=None, alpha=None)
            out[f"{a}.act_quantizer_{s}"] = [empty, collections.OrderedDict()]
    return out


def original_calibration(ours: Path) -> dict:
    """The dict gen_calib_data.py saves (mixdq-method.md §4), from our HDF5 file."""
    with h5py.File(ours, "r") as f:
        data = {
            "prompts": [p.decode() if isinstance(p, bytes) else str(p) for p in f["prompts"][()]],
            "ts": torch.from_numpy(f["ts"][()]),
            "xs": torch.from_numpy(f["xs"][()]),
            "outputs": torch.from_numpy(f["outputs"][()]),
            "text_embs": torch.from_numpy(f["text_embs"][()]),
            "added_cond_kwargs": {
                "text_embeds": torch.from_numpy(f["added_cond_kwargs/text_embeds"][()]),
                "time_ids": torch.from_numpy(f["added_cond_kwargs/time_ids"][()]),
            },
        }
    return data


# ---- checks ---------------------------------------------------------------------------------------


def check_checkpoint(source: Path, converted: Path, bits) -> None:
    a, b = load_file(str(source)), load_file(str(converted))
    assert sorted(a) == sorted(b), f"keys differ: {sorted(set(a) ^ set(b))[:5]}"
    worst = max(float(np.max(np.abs(a[k].astype(np.float64) - b[k]))) if a[k].size else 0.0 for k in a)
    assert all(a[k].shape == b[k].shape and a[k].dtype == b[k].dtype for k in a)
    print(f"checkpoint round trip ({source.parent.parent.name}): {len(a)} tensors, max abs diff {worst}")
    assert worst == 0.0
    with safe_open(str(converted), "np") as f:
        meta = f.metadata()
    assert meta["format"] == "mixdq-quant/1" and meta["bit_widths"] == ",".join(map(str, bits)), meta
    assert meta["weight_symmetric"] == "true", meta


def check_calibration(source: Path, converted: Path) -> None:
    with h5py.File(source, "r") as a, h5py.File(converted, "r") as b:
        names = []
        a.visit(lambda n: names.append(n) if isinstance(a[n], h5py.Dataset) else None)
        other = []
        b.visit(lambda n: other.append(n) if isinstance(b[n], h5py.Dataset) else None)
        assert sorted(names) == sorted(other), (names, other)
        for n in names:
            x, y = a[n][()], b[n][()]
            if n == "prompts":
                assert [s.decode() for s in x] == [s.decode() for s in y]
                continue
            assert x.shape == y.shape and x.dtype == y.dtype, (n, x.shape, y.shape, x.dtype, y.dtype)
            assert np.array_equal(x, y), n
        print(f"calibration round trip: {len(names)} datasets equal (max abs diff 0)")


def ptq_round_trip(mixdq: Path, env, tmp: Path, unet: Path, bits, dest: Path):
    """ptq with `bits` -> ptq_source/ (metadata naming this machine's folders dropped) -> ckpt.pth in the
    original's layout -> from_original.py -> converted/; checks every tensor came back. Returns the layers."""
    label = "-".join(str(b) for b in bits)
    write_config(tmp / f"config-{label}.yaml", "calib.h5", bits)
    run([mixdq, "ptq", "--config", tmp / f"config-{label}.yaml", "--outdir", tmp / f"ptq-{label}", "--seed", "42"], env)
    (dest / "ptq_source").mkdir(parents=True, exist_ok=True)
    write_config(dest / "config.yaml", "calib.h5", bits)
    tensors = load_file(str(tmp / f"ptq-{label}" / "ckpt.safetensors"))
    with safe_open(str(tmp / f"ptq-{label}" / "ckpt.safetensors"), "np") as f:
        meta = {k: v for k, v in f.metadata().items() if k not in ("model", "config")}
    save_file(tensors, str(dest / "ptq_source" / "ckpt.safetensors"), metadata=meta)
    with safe_open(str(unet), "np") as f:
        weight_ndim = {k[: -len(".weight")]: len(f.get_slice(k).get_shape()) for k in f.keys() if k.endswith(".weight")}
    # Not committed (1 MB: a zip entry and 64-byte alignment per tensor); test_from_original.py rebuilds it.
    pth = tmp / f"ckpt-{label}.pth"
    torch.save(original_checkpoint(dest / "ptq_source" / "ckpt.safetensors", weight_ndim, bits), pth)
    assert from_original.main(["ckpt", "--ckpt", str(pth), "--config", str(dest / "config.yaml"),
                               "--out", str(dest / "converted" / "ckpt.safetensors")]) == 0
    check_checkpoint(dest / "ptq_source" / "ckpt.safetensors", dest / "converted" / "ckpt.safetensors", bits)
    return sorted({k.rsplit(".", 2)[0] for k in tensors if ".weight_quantizer." in k})


def torch_list(path: Path, names, **kw) -> None:
    torch.save(names, path, **kw)
    with zipfile.ZipFile(path) as z:
        members = z.namelist()
    print(f"{path.name}: {members}")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mixdq", type=Path, required=True, help="the built mixdq binary")
    args = parser.parse_args()
    mixdq = args.mixdq.resolve()
    if OUT.exists():
        shutil.rmtree(OUT)
    (OUT / "hostile").mkdir(parents=True)

    # -- act-protect lists
    torch_list(OUT / "act_sensitivie_a8_1%.pt", ORIGINAL_ACT_PROTECT)
    (OUT / "act_sensitivie_a8_1%.json").write_text(json.dumps(ORIGINAL_ACT_PROTECT, indent=1) + "\n")
    proto4 = ["model.conv_in", "model.mid_block.attentions.0.transformer_blocks.0.attn2.to_k", "model.conv_out"]
    torch_list(OUT / "list_protocol4.pt", proto4, pickle_protocol=4)
    (OUT / "list_protocol4.json").write_text(json.dumps(proto4, indent=1) + "\n")
    name = "model.conv_in"
    repeated = [name, "model.conv_out", name]  # the same str object twice: pickled as a memo reference
    torch_list(OUT / "list_repeated.pt", repeated)
    with zipfile.ZipFile(OUT / "list_repeated.pt") as z:
        pkl = z.read(next(n for n in z.namelist() if n.endswith("data.pkl")))
    assert b"h\x01" in pkl, f"expected a BINGET in {pkl!r}"
    (OUT / "list_repeated.json").write_text(json.dumps(repeated, indent=1) + "\n")

    hostile = OUT / "hostile"
    torch.save({"model.conv_in": 1}, hostile / "dict.pt")
    torch.save([1, 2, 3], hostile / "ints.pt")
    torch.save(torch.zeros(3), hostile / "tensor.pt")
    torch.save([["model.conv_in"]], hostile / "nested.pt")
    torch.save(("model.conv_in", "model.conv_out"), hostile / "tuple.pt")
    torch.save(["model.conv_in", None], hostile / "none_in_list.pt")
    torch.save(["model.conv_in"], hostile / "legacy.pt", _use_new_zipfile_serialization=False)

    # -- checkpoint and calibration data of the random tiny model, made by mixdq itself
    with tempfile.TemporaryDirectory(prefix="mixdq-original-") as tmp:
        tmp = Path(tmp)
        env = dict(os.environ, MIXDQ_CACHE=str(tmp / "cache"), MIXDQ_DEFAULT_MODEL="random")
        run([mixdq, "default-model", "--random", "--output", tmp / "model"], env)
        unet = tmp / "model" / "unet" / "diffusion_pytorch_model.safetensors"
        write_config(tmp / "config.yaml", "calib.h5", COMMITTED_BITS)
        run([mixdq, "calib-data", "--config", tmp / "config.yaml"], env)
        # Copied object by object (an attribute rewritten in place leaves its old bytes in the file),
        # without this machine's model path in the `layout` attribute.
        with h5py.File(tmp / "calib.h5", "r") as f, h5py.File(OUT / "calib_source.h5", "w") as g:
            for name in f:
                f.copy(name, g)
            for key, value in f.attrs.items():
                if key == "layout":
                    value = value.decode() if isinstance(value, bytes) else str(value)
                    value = re.sub(r"model=\S+", "model=<random tiny default model>", value)
                g.attrs[key] = value
        torch.save(original_calibration(OUT / "calib_source.h5"), OUT / "calib.pt")
        assert from_original.main(["calib", "--calib", str(OUT / "calib.pt"), "--out", str(OUT / "calib_converted.h5")]) == 0
        check_calibration(OUT / "calib_source.h5", OUT / "calib_converted.h5")

        # The original's three rows, checked here and not committed; then the committed set.
        ptq_round_trip(mixdq, env, tmp, unet, FULL_BITS, tmp / "full")
        layers = ptq_round_trip(mixdq, env, tmp, unet, COMMITTED_BITS, OUT)

    # Layers of the tiny model in the spirit of the original's list: the first ff.net.2, the ends, a shortcut.
    tiny = [next(l for l in layers if l.endswith("ff.net.2")), "conv_in", "conv_out", "down_blocks.0.resnets.0.conv2",
            next(l for l in layers if l.startswith("up_blocks.") and l.endswith("conv_shortcut"))]
    assert all(l in layers for l in tiny), tiny
    torch_list(OUT / "act_protect_tiny.pt", [f"model.{l}" for l in tiny])
    (OUT / "act_protect_tiny.yaml").write_text("".join(f"- model.{l}\n" for l in tiny))

    files = sorted(p for p in OUT.rglob("*") if p.is_file())
    total = sum(p.stat().st_size for p in files)
    manifest = {
        "generator": "scripts/reference/make_original_artefact_fixtures.py",
        "regenerate": "swift build -c release --product mixdq && .venv-reference/bin/python "
                      "scripts/reference/make_original_artefact_fixtures.py --mixdq .build/release/mixdq",
        "torch": torch.__version__, "h5py": h5py.__version__,
        "files": {str(p.relative_to(OUT)): hashlib.sha256(p.read_bytes()).hexdigest() for p in files},
    }
    (OUT / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    print(f"{OUT}: {len(files)} files, {total} bytes")
    assert total < 2_000_000, "fixtures must stay under 2 MB"
    return 0


if __name__ == "__main__":
    sys.exit(main())
