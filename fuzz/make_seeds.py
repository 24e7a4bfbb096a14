#!/usr/bin/env python3
"""Writes the seed corpora under fuzz/corpus/ (small valid inputs, one folder per target).

Run from the repository root: python3 fuzz/make_seeds.py. The hdf5 seeds need h5py and numpy
(for example from scripts/reference/setup_venv.sh); without them the hdf5 folder is left as is.
The input formats are described in fuzz/README.md.
"""
import json
import struct
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "fuzz" / "corpus"
FIXTURES = ROOT / "Tests" / "Fixtures"


def write(target, name, data):
    folder = CORPUS / target
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(data if isinstance(data, bytes) else data.encode())


def safetensors(tensors, metadata=None):
    """tensors: list of (name, dtype, shape, raw bytes) laid out in order."""
    header, offset, blob = {}, 0, b""
    if metadata is not None:
        header["__metadata__"] = metadata
    for name, dtype, shape, raw in tensors:
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + len(raw)]}
        offset += len(raw)
        blob += raw
    text = json.dumps(header, separators=(",", ":")).encode()
    return struct.pack("<Q", len(text)) + text + blob


def safetensors_seeds():
    f32 = struct.pack("<4f", 1.0, -2.0, 0.5, 3.25)
    write("safetensors", "f32_2x2", safetensors([("w", "F32", [2, 2], f32)]))
    write("safetensors", "mixed_dtypes", safetensors([
        ("a.weight", "F16", [3], struct.pack("<3e", 1.0, -0.5, 2.0)),
        ("b.bias", "BF16", [2], bytes([0x80, 0x3F, 0x00, 0xC0])),
        ("c", "F64", [1], struct.pack("<d", 0.125)),
        ("d", "I8", [2, 1], bytes([1, 255])),
        ("e", "F32", [0, 4], b""),
    ], metadata={"format": "pt"}))
    write("safetensors", "scalar_and_empty", safetensors([("s", "F32", [], struct.pack("<f", 7.0))]))
    write("safetensors", "no_tensors", safetensors([], metadata={}))


def config_seeds():
    # First byte picks the config type: 0 UNet, 1 CLIP text, 2 VAE, 3 scheduler.
    sources = [
        (0, "unet_sdxl", FIXTURES / "unet_sdxl_tiny/unet/config.json"),
        (0, "unet_sd15", FIXTURES / "unet_sd15_tiny/unet/config.json"),
        (1, "clip_te1", FIXTURES / "clip_tiny/text_encoder/config.json"),
        (1, "clip_te2", FIXTURES / "clip_tiny/text_encoder_2/config.json"),
        (2, "vae", FIXTURES / "vae_tiny/vae/config.json"),
    ]
    for selector, name, path in sources:
        text = json.dumps(json.loads(path.read_text()), separators=(",", ":"))
        write("config-json", name, bytes([selector]) + text.encode())
    scheduler = {
        "_class_name": "EulerAncestralDiscreteScheduler", "beta_end": 0.012, "beta_schedule": "scaled_linear",
        "beta_start": 0.00085, "num_train_timesteps": 1000, "prediction_type": "epsilon",
        "steps_offset": 1, "timestep_spacing": "trailing", "trained_betas": None,
    }
    write("config-json", "scheduler_euler_a", bytes([3]) + json.dumps(scheduler, separators=(",", ":")).encode())
    scheduler.update({"_class_name": "EulerDiscreteScheduler", "timestep_spacing": "leading",
                      "beta_schedule": "linear"})
    write("config-json", "scheduler_euler", bytes([3]) + json.dumps(scheduler, separators=(",", ":")).encode())


def yaml_seeds():
    # First byte picks the reader: 0 MixDQ config, 1 bit-width file, 2 act-protect layer list.
    write("mixdq-yaml", "config_original", b"\x00" + (FIXTURES / "config/original_sdxl_turbo.yaml").read_bytes())
    write("mixdq-yaml", "config_sdxl_turbo", b"\x00" + (ROOT / "configs/sdxl_turbo.yaml").read_bytes())
    bits = "\n".join([
        "model.conv_in: 8",
        "model.down_blocks.0.resnets.0.conv1: 4",
        "up_blocks.1.attentions.0.proj_out: 3",
    ]) + "\n"
    write("mixdq-yaml", "bits", b"\x01" + bits.encode())
    write("mixdq-yaml", "layer_list", b"\x02" + b"- model.conv_in\n- model.conv_out\n- time_embedding.linear_1\n")
    # 3 sensitivity scores [s@2, s@4, s@8], 4 tensor ratios (mixdq search).
    write("mixdq-yaml", "scores", b"\x03" + b"model.conv_in: [0.91, 0.98, 0.999]\nmodel.conv_out: [12.5, 30.1, 48.0]\n")
    write("mixdq-yaml", "ratios", b"\x04" + b"model.conv_in: 1.0\nmodel.time_embedding.linear_1: 35.5\n")


def quantized_unet_seeds():
    """A deployable quantized UNet file (QuantizedUNetFormat) with one layer of each kind the target builds:
    `l` a 4 -> 3 Linear, W8A8, BOS-aware with a one-row token-0 table; `blk.conv` a 3x3 conv 4 -> 3 with a
    split input (2 + 2 channels), W4A8 (codes packed two per byte)."""
    f32 = lambda *v: struct.pack(f"<{len(v)}f", *v)
    s8 = bytes((c & 0xFF) for c in [1, -2, 3, -4, 5, -6, 7, -8, 9, -10, 11, -12])
    codes4 = [(i % 16) - 8 for i in range(3 * 4 * 9)]
    packed4 = bytes(((codes4[2 * i] & 15) | ((codes4[2 * i + 1] & 15) << 4)) for i in range(len(codes4) // 2))
    layers = {"l": {"weight_bits": 8, "rest_bits": 8, "activation_bits": 8},
              "blk.conv": {"weight_bits": 4, "rest_bits": 4, "activation_bits": 8}}
    meta = {"format": "mixdq-quantized-unet/1", "layers": json.dumps(layers, separators=(",", ":"), sort_keys=True)}
    write("quantized-unet", "linear_and_split_conv", safetensors([
        ("blk.conv.input_scales", "F32", [2], f32(0.05, 0.1)),
        ("blk.conv.input_zero_points", "F32", [2], f32(3, 128)),
        ("blk.conv.weight_codes", "U8", [len(packed4)], packed4),
        ("blk.conv.weight_scales", "F32", [2, 3], f32(0.01, 0.02, 0.03, 0.04, 0.05, 0.06)),
        ("l.input_scales", "F32", [1], f32(0.02)),
        ("l.input_zero_points", "F32", [1], f32(100)),
        ("l.token0_inputs", "F32", [1, 4], f32(0, 0, 0, 0)),
        ("l.token0_outputs", "F32", [1, 3], f32(0, 0, 0)),
        ("l.weight_codes", "U8", [12], s8),
        ("l.weight_scales", "F32", [1, 3], f32(0.5, 0.25, 0.125)),
    ], meta))


def tokenizer_seeds():
    # vocab.json NUL merges.txt NUL tokenizer_config.json NUL prompt
    letters = "acdeghilnopst"
    vocab = {}
    for c in letters:
        vocab[c] = len(vocab)
    for c in letters:
        vocab[c + "</w>"] = len(vocab)
    merges = ["c a", "ca t</w>", "p h", "ph o", "pho t", "phot o</w>", "o f</w>", "a </w>"]
    for a, b in (m.split(" ") for m in merges):
        vocab[a + b] = len(vocab)
    vocab["<|startoftext|>"] = len(vocab)
    vocab["<|endoftext|>"] = len(vocab)
    vocab_text = json.dumps(vocab, separators=(",", ":"), ensure_ascii=False)
    merges_text = "#version: 0.2\n" + "\n".join(merges) + "\n"
    config = json.dumps({"model_max_length": 16, "pad_token": "<|endoftext|>"})
    parts = [vocab_text, merges_text, "", "a photo of a cat"]
    write("tokenizer", "tiny_no_config", "\0".join(parts))
    parts[2] = config
    write("tokenizer", "tiny_with_config", "\0".join(parts))
    added = json.dumps({"model_max_length": 8, "added_tokens_decoder": {
        str(vocab["<|startoftext|>"]): {"content": "<|startoftext|>", "special": True},
        str(vocab["<|endoftext|>"]): {"content": "<|endoftext|>", "special": True}}})
    write("tokenizer", "tiny_added_tokens", "\0".join([vocab_text, merges_text, added, "cat cat photo!"]))


def hdf5_seeds():
    try:
        import h5py
        import numpy as np
    except ImportError:
        print("h5py/numpy not found: hdf5 seeds left as they are")
        return
    folder = CORPUS / "hdf5"
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    # The calibration-data layout (CalibrationDataGenerator), tiny: 1 step x 2 rows.
    with h5py.File(folder / "calib_layout", "w") as f:
        f["xs"] = rng.standard_normal((1, 2, 4, 2, 2)).astype(np.float32)
        f["ts"] = np.array([[999.0, 999.0]], dtype=np.float32)
        f["text_embs"] = rng.standard_normal((1, 2, 3, 4)).astype(np.float32)
        f["added_cond_kwargs/text_embeds"] = rng.standard_normal((1, 2, 4)).astype(np.float32)
        f["added_cond_kwargs/time_ids"] = np.zeros((1, 2, 6), dtype=np.float32)
        f["prompts"] = np.array(["a cat", "a dog"], dtype=h5py.string_dtype())
        f.attrs["batches_done"] = np.int64(1)
        f.attrs["layout"] = "model=tiny steps=1 rows=2"
    with h5py.File(folder / "types", "w") as f:
        f["ints"] = np.arange(6, dtype=np.int32).reshape(2, 3)
        f["doubles"] = np.array([0.5, -1.0], dtype=np.float64)
        f["fixed_strings"] = np.array([b"ab", b"cde"], dtype="S4")
        f["scalar"] = np.float32(2.0)
        f["empty"] = np.zeros((0, 3), dtype=np.float32)
        f.create_group("g/h")
        f.attrs["batches_done"] = "not an int"
    with h5py.File(folder / "chunked", "w") as f:
        f.create_dataset("xs", data=np.ones((2, 3, 4), dtype=np.float32), chunks=(1, 3, 4), compression="gzip")


def torch_list_seeds():
    # torch.save'd files from scripts/reference/make_original_artefact_fixtures.py: lists and hostile files.
    originals = FIXTURES / "original"
    for path in sorted(originals.glob("*.pt")) + sorted((originals / "hostile").glob("*.pt")):
        if path.name == "calib.pt":  # 134 KB of tensors: the tensor seed covers that case
            continue
        write("torch-list", path.stem.replace("%", "pct"), path.read_bytes())


if __name__ == "__main__":
    safetensors_seeds()
    config_seeds()
    yaml_seeds()
    tokenizer_seeds()
    quantized_unet_seeds()
    hdf5_seeds()
    torch_list_seeds()
