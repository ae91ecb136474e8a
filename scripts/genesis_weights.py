"""Shared by scripts/genesis_to_torch.py and scripts/torch_to_genesis.py: the state_dict of the
Models Genesis UNet3D (SPEC.md section 4) as a table of names and shapes for a base width w, and
the genesis weights file format (include/genesis/weights.h):

  /<state_dict key>   float32 in PyTorch's shape; num_batches_tracked int64 scalar
  attributes of /     format = "genesis-unet3d-weights", format_version = 1, width, genesis_version
"""
import os
from collections import OrderedDict

import h5py
import numpy as np

FORMAT, FORMAT_VERSION = "genesis-unet3d-weights", 1


def _luconv(prefix, cin, cout):
    """Conv3d(cin -> cout, 3, padding 1, bias) then BatchNorm3d(cout), in state_dict order."""
    return [(prefix + "conv1.weight", (cout, cin, 3, 3, 3)), (prefix + "conv1.bias", (cout,)),
            (prefix + "bn1.weight", (cout,)), (prefix + "bn1.bias", (cout,)),
            (prefix + "bn1.running_mean", (cout,)), (prefix + "bn1.running_var", (cout,)),
            (prefix + "bn1.num_batches_tracked", ())]


def expected_state(w):
    """OrderedDict name -> shape of UNet3D(w)'s state_dict (shape () is the int64 counter)."""
    entries = []
    for level, name in enumerate(("down_tr64", "down_tr128", "down_tr256", "down_tr512")):
        c = w << level                          # c = w * 2^level; the block outputs 2c channels
        entries += _luconv(f"{name}.ops.0.", c if level else 1, c)
        entries += _luconv(f"{name}.ops.1.", c, 2 * c)
    for level, name in ((2, "up_tr256"), (1, "up_tr128"), (0, "up_tr64")):
        c, cu = w << level, 2 * (w << (level + 1))  # skip has 2c channels; the input below has cu
        entries += [(f"{name}.up_conv.weight", (cu, cu, 2, 2, 2)), (f"{name}.up_conv.bias", (cu,))]
        entries += _luconv(f"{name}.ops.0.", cu + 2 * c, 2 * c)
        entries += _luconv(f"{name}.ops.1.", 2 * c, 2 * c)
    entries += [("out_tr.final_conv.weight", (1, 2 * w, 1, 1, 1)), ("out_tr.final_conv.bias", (1,))]
    return OrderedDict(entries)


def infer_width(shapes, source):
    """The base width from down_tr64.ops.0.conv1.weight's shape [w, 1, 3, 3, 3]."""
    key = "down_tr64.ops.0.conv1.weight"
    if key not in shapes or len(shapes[key]) != 5:
        raise SystemExit(f"{source}: cannot tell the model width: no {key} of shape [w, 1, 3, 3, 3]")
    return int(shapes[key][0])


def check_state(shapes, source):
    """Refuses a state (name -> shape) that is not exactly UNet3D(w)'s, listing the names.
    Returns (w, expected)."""
    w = infer_width(shapes, source)
    expected = expected_state(w)
    missing = [k for k in expected if k not in shapes]
    extra = [k for k in shapes if k not in expected]
    shaped = [f"{k} {list(shapes[k])} (expected {list(expected[k])})"
              for k in expected if k in shapes and tuple(shapes[k]) != expected[k]]
    if missing or extra or shaped:
        parts = [f"missing {len(missing)}: {', '.join(missing)}" if missing else "",
                 f"unexpected {len(extra)}: {', '.join(extra)}" if extra else "",
                 f"wrong shape {len(shaped)}: {', '.join(shaped)}" if shaped else ""]
        raise SystemExit(f"{source}: does not match the width-{w} UNet3D state_dict; "
                         + "; ".join(p for p in parts if p))
    return w, expected


def read_weights(path):
    """A genesis weights file -> (width, OrderedDict name -> numpy array in state_dict order)."""
    with h5py.File(path, "r") as f:
        fmt = f.attrs.get("format")
        if fmt is not None and (fmt.decode() if isinstance(fmt, bytes) else str(fmt)) != FORMAT:
            raise SystemExit(f"{path}: format {fmt!r}, expected {FORMAT}")
        groups = [k for k in f if not isinstance(f[k], h5py.Dataset)]
        shapes = {k: f[k].shape for k in f if isinstance(f[k], h5py.Dataset)}
        shapes.update({k: ("group",) for k in groups})
        w, expected = check_state(shapes, path)
        state = OrderedDict()
        for k in expected:
            a = f[k][()]
            state[k] = np.asarray(a, dtype=np.int64 if k.endswith("num_batches_tracked") else np.float32)
    return w, state


def write_weights(path, state, width, written_by):
    """state: name -> numpy array (already checked); written under a temporary name, renamed."""
    tmp = f"{path}.tmp-{os.getpid()}"
    try:
        with h5py.File(tmp, "w") as f:
            for k, a in state.items():
                if k.endswith("num_batches_tracked"):
                    f.create_dataset(k, data=np.int64(a), dtype="<i8")
                else:
                    f.create_dataset(k, data=np.ascontiguousarray(a, dtype=np.float32), dtype="<f4")
            f.attrs["format"] = np.bytes_(FORMAT)
            f.attrs["format_version"] = np.int64(FORMAT_VERSION)
            f.attrs["width"] = np.int64(width)
            f.attrs["genesis_version"] = np.bytes_(written_by)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
