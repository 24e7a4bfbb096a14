"""PyTorch FP16 on the SDXL-Turbo layer geometries of bench/layers.h: F.linear (cuBLAS) and
F.conv2d channels_last (cuDNN), batch 1 and 2, the peer the W8A8 kernels should beat.

    python kernels/bench/torch_fp16.py [out.md]     (run by kernels/gpu_check.sh; needs torch with CUDA)
"""
import re
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

LAYER = re.compile(r'\{"([^"]*)", (\d+), (\d), (\d+), (\d+), (\d+), (\d+), (\d), (\d), (\d), (\d+)\}')


def layers():
    text = (Path(__file__).parent / "layers.h").read_text()
    for m in LAYER.finditer(text):
        name, count, conv, rows, height, cin, cout, k, s, p, _split = m.groups()
        yield name, int(count), conv == "1", int(rows), int(height), int(cin), int(cout), int(k), int(s), int(p)


def time_us(fn, reps=5):
    fn()
    torch.cuda.synchronize()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record(); fn(); end.record(); torch.cuda.synchronize()
    iters = max(3, min(200, int(20000 / max(start.elapsed_time(end) * 1000, 1))))
    times = []
    for _ in range(reps):
        start.record()
        for _ in range(iters):
            fn()
        end.record()
        torch.cuda.synchronize()
        times.append(start.elapsed_time(end) * 1000 / iters)
    return sorted(times)[reps // 2]


def main():
    out = open(sys.argv[1], "w") if len(sys.argv) > 1 else None

    def emit(line):
        print(line)
        if out:
            out.write(line + "\n")

    dev = torch.device("cuda")
    torch.backends.cudnn.benchmark = True
    emit(f"# PyTorch {torch.__version__} FP16 (cuBLAS / cuDNN {torch.backends.cudnn.version()}), {torch.cuda.get_device_name()}\n")
    for batch in (1, 2):
        emit(f"## batch {batch}\n\n| layer (example) | sites | FP16 us |\n|---|---|---|")
        total = 0.0
        for name, count, conv, rows, height, cin, cout, k, s, p in layers():
            if conv:
                x = torch.randn(batch, cin, height, height, device=dev, dtype=torch.half).to(memory_format=torch.channels_last)
                w = torch.randn(cout, cin, k, k, device=dev, dtype=torch.half).to(memory_format=torch.channels_last)
                b = torch.randn(cout, device=dev, dtype=torch.half)
                t = time_us(lambda: F.conv2d(x, w, b, stride=s, padding=p))
            else:
                x = torch.randn(batch * rows, cin, device=dev, dtype=torch.half)
                w = torch.randn(cout, cin, device=dev, dtype=torch.half)
                b = torch.randn(cout, device=dev, dtype=torch.half)
                t = time_us(lambda: F.linear(x, w, b))
            total += count * t
            emit(f"| {name} | {count} | {t:.1f} |")
        emit(f"\nAll 794 sites, batch {batch}: PyTorch FP16 {total / 1000:.2f} ms\n")


if __name__ == "__main__":
    main()
