"""Golden activation-quantizer parameters from the original MixDQ arithmetic, in PyTorch.

Transcribes `BaseQuantizer.init_quant_params` of MixDQ's `quant_utils/qdiff/quantizer/base_quantizer.py`
(min_max, tensor-wise, asymmetric, running_stat momentum 0.95) as `forward` calls it during
calibration with `mixed_precision = [2, 4, 8]`: per batch the range is widened to contain 0, then the
EMA state is updated once per bit width inside the same call (the "compat" quirk), and bit width k
takes the state after its own update. The "clean" variant updates once per batch. All arithmetic is
float32 torch, as in the original (Python scalars 0.95 and 1 - 0.95 enter as float32).

Run: .venv-reference/bin/python scripts/reference/make_ema_fixtures.py   (from the repo root; any torch 2.x)
Writes Tests/Fixtures/quant/ema_reference.json.
"""
import json
import torch

BITS = [2, 4, 8]
MOMENTUM = 0.95


def f32_bits(t):
    return int(torch.tensor([float(t)], dtype=torch.float32).view(torch.int32).item()) & 0xFFFFFFFF


def params(x_min, x_max, n_bits):
    n_levels = 2 ** n_bits
    delta = (x_max - x_min) / (n_levels - 1)
    if delta.min() < 1.0e-6:
        delta = delta.fill_(1.0e-6)
    zero_point = torch.round(-x_min / delta)
    return delta, zero_point


def run(batches, repeat):
    state = None
    out = []
    for x in batches:
        x_min = x.reshape(-1).min(dim=-1)[0]
        x_min[x_min > 0] = 0.0
        x_max = x.reshape(-1).max(dim=-1)[0]
        x_max[x_max < 0] = 0.0
        per_bit = {}
        for k, n_bits in enumerate(BITS):
            if k == 0 or repeat:
                if state is None:
                    state = (x_min, x_max)
                else:
                    state = (state[0] * MOMENTUM + x_min * (1 - MOMENTUM), state[1] * MOMENTUM + x_max * (1 - MOMENTUM))
            d, z = params(state[0], state[1], n_bits)
            per_bit[str(n_bits)] = {"delta": f32_bits(d), "zero_point": f32_bits(z)}
        out.append({"min": f32_bits(x.min()), "max": f32_bits(x.max()), "params": per_bit})
    return out


def main():
    g = torch.Generator().manual_seed(1234)
    cases = []
    # Mixed-sign batches, one-signed batches (late timesteps, post-SiLU inputs), a tiny-range batch.
    for name, shifts, scales in [
        ("mixed_sign", [0.0, 0.1, -0.2, 0.05], [1.0, 2.0, 0.5, 3.0]),
        ("positive_batches", [3.0, 2.5, 4.0, 3.5], [1.0, 0.5, 1.0, 0.2]),
        ("negative_then_positive", [-4.0, -3.0, 5.0, 6.0], [0.5, 0.5, 0.5, 0.5]),
        ("tiny_range", [0.0, 0.0, 0.0], [1e-8, 2e-8, 1e-8]),
    ]:
        batches = [torch.randn(64, generator=g) * s + m for m, s in zip(shifts, scales)]
        cases.append({"name": name, "compat": run(batches, True), "clean": run(batches, False)})
    doc = {"generator": "scripts/reference/make_ema_fixtures.py", "torch": torch.__version__, "bits": BITS,
           "momentum": MOMENTUM, "note": "float32 values stored as uint32 bit patterns", "cases": cases}
    with open("Tests/Fixtures/quant/ema_reference.json", "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
