#!/usr/bin/python3
"""genesis weights (genesis export) -> a PyTorch .pt that the reference UNet3D loads with
load_state_dict(..., strict=True).

usage: python3 scripts/genesis_to_torch.py WEIGHTS.h5 OUT.pt [--form plain|checkpoint]

  plain        the state_dict itself: an OrderedDict name -> tensor, in state_dict order
               (model.load_state_dict(torch.load("OUT.pt")))
  checkpoint   the reference code's checkpoint form, as saved from nn.DataParallel:
               {'state_dict': {'module.' + name: tensor}}; the reference's fine-tuning code
               strips 'module.' and loads it

Missing, unexpected or mis-shaped tensors are refused with their names listed (exit status 1).
Needs h5py, numpy and torch (Debian: python3-h5py python3-torch).
"""
import argparse
import os
import sys
from collections import OrderedDict

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import genesis_weights  # noqa: E402


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("weights")
    p.add_argument("output")
    p.add_argument("--form", choices=("plain", "checkpoint"), default="plain")
    a = p.parse_args()
    import torch
    w, state = genesis_weights.read_weights(a.weights)
    sd = OrderedDict((k, torch.from_numpy(v.copy())) for k, v in state.items())
    obj = sd if a.form == "plain" else {"state_dict": OrderedDict(("module." + k, v) for k, v in sd.items())}
    tmp = f"{a.output}.tmp-{os.getpid()}"
    try:
        torch.save(obj, tmp)
        os.replace(tmp, a.output)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    n = sum(v.numel() for k, v in sd.items() if not k.endswith(("running_mean", "running_var", "num_batches_tracked")))
    print(f"genesis_to_torch: {a.output}: {len(sd)} tensors of UNet3D(width {w}), {n} parameters, {a.form} form")


if __name__ == "__main__":
    main()
