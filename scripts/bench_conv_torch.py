#!/usr/bin/python3
"""Per-layer conv timings of Debian's PyTorch (oneDNN) on the U-Net's layer shapes, in the same
format as tests/bench/bench_conv.c, so the two can be compared line by line in one run.

    /usr/bin/python3 scripts/bench_conv_torch.py [-n batch] [-r min_seconds] [-l substring]

Forward is F.conv3d / F.conv_transpose3d; backward data and backward weight(+bias) are timed
separately through aten.convolution_backward with an output mask, as bench_conv separates them.
The first layer's backward data is not timed (the model needs no input gradient there).
Threads: torch.set_num_threads(1). Times are the best of the repetitions, in this thread's CPU
time (the cores are shared; -w for wall time), as bench_conv measures.
"""
import argparse
import time

import torch
import torch.nn.functional as F

LAYERS = [  # name, kind, Cin, Cout, D, H, W, k   (conv_t: input sizes)
    ("down64.conv1", "conv", 1, 32, 64, 64, 32, 3),
    ("down64.conv2", "conv", 32, 64, 64, 64, 32, 3),
    ("down128.conv1", "conv", 64, 64, 32, 32, 16, 3),
    ("down128.conv2", "conv", 64, 128, 32, 32, 16, 3),
    ("down256.conv1", "conv", 128, 128, 16, 16, 8, 3),
    ("down256.conv2", "conv", 128, 256, 16, 16, 8, 3),
    ("down512.conv1", "conv", 256, 256, 8, 8, 4, 3),
    ("down512.conv2", "conv", 256, 512, 8, 8, 4, 3),
    ("up256.upconv", "convt", 512, 512, 8, 8, 4, 2),
    ("up256.conv1", "conv", 768, 256, 16, 16, 8, 3),
    ("up256.conv2", "conv", 256, 256, 16, 16, 8, 3),
    ("up128.upconv", "convt", 256, 256, 16, 16, 8, 2),
    ("up128.conv1", "conv", 384, 128, 32, 32, 16, 3),
    ("up128.conv2", "conv", 128, 128, 32, 32, 16, 3),
    ("up64.upconv", "convt", 128, 128, 32, 32, 16, 2),
    ("up64.conv1", "conv", 192, 64, 64, 64, 32, 3),
    ("up64.conv2", "conv", 64, 64, 64, 64, 32, 3),
    ("out.conv", "conv", 64, 1, 64, 64, 32, 1),
]


CLOCK = time.thread_time  # CPU time of this thread (shared cores); -w for wall time


def best_time(fn, min_seconds):
    best, start, rep = 1e30, CLOCK(), 0
    while rep < 2 or CLOCK() - start < min_seconds:
        t0 = CLOCK()
        fn()
        best = min(best, CLOCK() - t0)
        rep += 1
    return best


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, default=1)
    ap.add_argument("-r", type=float, default=0.3)
    ap.add_argument("-l", default=None)
    ap.add_argument("-w", action="store_true", help="wall-clock time instead of thread CPU time")
    a = ap.parse_args()
    global CLOCK
    if a.w:
        CLOCK = time.perf_counter
    torch.set_num_threads(1)
    torch.set_grad_enabled(False)
    print(f"torch {torch.__version__}, mkldnn {torch.backends.mkldnn.is_available()}, "
          f"threads {torch.get_num_threads()}, batch {a.n}")
    print(f"{'layer':14s} {'Cin>Cout DxHxW':18s} {'fwd ms':>9s} {'GF/s':>6s} {'bwd-d ms':>9s} "
          f"{'GF/s':>6s} {'bwd-w ms':>9s} {'GF/s':>6s} {'total ms':>9s}")
    sums, flops_all = [0.0, 0.0, 0.0], 0.0
    for i, (name, kind, cin, cout, d, h, w, k) in enumerate(LAYERS):
        if a.l and a.l not in name:
            continue
        x = torch.randn(a.n, cin, d, h, w)
        if kind == "conv":
            wt = torch.randn(cout, cin, k, k, k)
            pad, stride, transposed, taps, vout = (k - 1) // 2, 1, False, k ** 3, d * h * w
            fwd = lambda: F.conv3d(x, wt, b, padding=pad)
        else:
            wt = torch.randn(cin, cout, 2, 2, 2)
            pad, stride, transposed, taps, vout = 0, 2, True, 8, 8 * d * h * w
            fwd = lambda: F.conv_transpose3d(x, wt, b, stride=2)
        b = torch.randn(cout)
        dy = torch.randn(a.n, cout, *( (d, h, w) if kind == "conv" else (2 * d, 2 * h, 2 * w)))
        cb = torch.ops.aten.convolution_backward
        args = lambda mask: (dy, x, wt, [cout], [stride] * 3, [pad] * 3, [1] * 3, transposed,
                             [0] * 3, 1, mask)
        flops = 2.0 * a.n * d * h * w * cout * cin * taps  # transposed: per input voxel
        t = [best_time(fwd, a.r),
             0.0 if i == 0 else best_time(lambda: cb(*args([True, False, False])), a.r),
             best_time(lambda: cb(*args([False, True, True])), a.r)]
        g = [flops / tt * 1e-9 if tt > 0 else 0.0 for tt in t]
        shape = f"{cin}>{cout} {d}x{h}x{w}"
        print(f"{name:14s} {shape:18s} {t[0]*1e3:9.2f} {g[0]:6.1f} {t[1]*1e3:9.2f} {g[1]:6.1f} "
              f"{t[2]*1e3:9.2f} {g[2]:6.1f} {sum(t)*1e3:9.2f}", flush=True)
        for p in range(3):
            sums[p] += t[p]
        flops_all += (3 if t[1] > 0 else 2) * flops
    tot = sum(sums)
    print(f"{'sum':33s} {sums[0]*1e3:9.2f} {'':6s} {sums[1]*1e3:9.2f} {'':6s} {sums[2]*1e3:9.2f} "
          f"{'':6s} {tot*1e3:9.2f}  ({flops_all/tot*1e-9:.1f} GFLOP/s overall)")


if __name__ == "__main__":
    main()
