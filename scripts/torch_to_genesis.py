#!/usr/bin/python3
"""A PyTorch UNet3D .pt -> a genesis weights file (the format of genesis export), e.g. to start
pretraining from it with [train] init_from = WEIGHTS.h5.

usage: python3 scripts/torch_to_genesis.py IN.pt WEIGHTS.h5

IN.pt may be a plain state_dict, or a checkpoint dict holding one under 'state_dict' (the
reference code's form); 'module.' prefixes (nn.DataParallel) are stripped. The width is taken
from down_tr64.ops.0.conv1.weight. Missing, unexpected or mis-shaped tensors are refused with their
names listed (exit status 1). Needs h5py, numpy and torch.
"""
import argparse
import os
import sys
from collections import OrderedDict

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import genesis_weights  # noqa: E402


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("input")
    p.add_argument("output")
    a = p.parse_args()
    import torch
    obj = torch.load(a.input, map_location="cpu")
    if isinstance(obj, dict) and "state_dict" in obj and isinstance(obj["state_dict"], dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict):
        raise SystemExit(f"{a.input}: neither a state_dict nor a checkpoint dict with 'state_dict'")
    state = OrderedDict()
    for k, v in obj.items():
        name = k[len("module."):] if k.startswith("module.") else k
        if not torch.is_tensor(v):
            raise SystemExit(f"{a.input}: entry {k} is not a tensor")
        state[name] = v.detach().cpu().numpy()
    w, expected = genesis_weights.check_state({k: v.shape for k, v in state.items()}, a.input)
    genesis_weights.write_weights(a.output, OrderedDict((k, state[k]) for k in expected), w,
                                  "torch_to_genesis.py (torch " + torch.__version__ + ")")
    print(f"torch_to_genesis: {a.output}: {len(expected)} tensors of UNet3D(width {w})")


if __name__ == "__main__":
    main()
