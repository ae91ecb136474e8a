#!/usr/bin/python3
"""Reference tensors for tests/unit/test_golden.c, from PyTorch (Debian's python3-torch 1.13).

Our own PyTorch code of the SPEC.md UNet3D (section 4), written from the spec, with the reference's
module and parameter names (state_dict keys) and ContBatchNorm3d semantics (batch statistics
always: F.batch_norm(training=True)). Width 4, input 16x16x8, batch 2, fixed seeds, float32,
one thread. Writes tests/golden/unet3d_w4.h5:

  /input, /target            [2, 1, 16, 16, 8]
  /init/<name>               every state_dict entry before training (parameters and buffers)
  /output                    sigmoid output of the first forward, [2, 1, 16, 16, 8]
  /loss                      MSE of the first forward (scalar, float64)
  /grad/<name>               every parameter's gradient after the first backward
  /bn_after_forward/<name>   BN running_mean / running_var / num_batches_tracked after it
  /sgd3/<name>               every state_dict entry after 3 SGD steps (lr 0.1, momentum 0.9):
                             step 1 uses the gradient above; steps 2 and 3 each run forward and
                             backward on the same input and target first
  /sgd3_losses               the losses of the three forwards, float64 [3]

Run: /usr/bin/python3 tests/golden/make_golden.py [output.h5]
"""
import sys

import h5py
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

WIDTH, BATCH, SHAPE = 4, 2, (16, 16, 8)
LR, MOMENTUM, STEPS = 0.1, 0.9, 3


class ContBatchNorm3d(nn.modules.batchnorm._BatchNorm):
    """BatchNorm3d that normalises with the current batch's statistics in training and
    evaluation alike, updating the running estimates (momentum 0.1, eps 1e-5)."""

    def forward(self, x):
        if x.dim() != 5:
            raise ValueError("expected a 5D input")
        return F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias,
                            True, self.momentum, self.eps)


class LUConv(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.conv1 = nn.Conv3d(cin, cout, kernel_size=3, padding=1)
        self.bn1 = ContBatchNorm3d(cout)

    def forward(self, x):
        return F.relu(self.bn1(self.conv1(x)))


class Down(nn.Module):
    """Level l: LUConv(l ? c : 1 -> c), LUConv(c -> 2c), c = w * 2^l; pool except at the bottom."""

    def __init__(self, level, w):
        super().__init__()
        c = w << level
        self.ops = nn.Sequential(LUConv(c if level else 1, c), LUConv(c, 2 * c))
        self.maxpool = nn.MaxPool3d(2)
        self.bottom = level == 3

    def forward(self, x):
        skip = self.ops(x)
        return skip, (skip if self.bottom else self.maxpool(skip))


class Up(nn.Module):
    """Level d: ConvTranspose3d(2c' -> 2c', 2, 2) with c' = w * 2^(d+1); concat (up, skip);
    LUConv(2c' + 2c -> 2c), LUConv(2c -> 2c), c = w * 2^d."""

    def __init__(self, level, w):
        super().__init__()
        c, cu = w << level, 2 * (w << (level + 1))
        self.up_conv = nn.ConvTranspose3d(cu, cu, kernel_size=2, stride=2)
        self.ops = nn.Sequential(LUConv(cu + 2 * c, 2 * c), LUConv(2 * c, 2 * c))

    def forward(self, x, skip):
        return self.ops(torch.cat((self.up_conv(x), skip), 1))


class Out(nn.Module):
    def __init__(self, cin):
        super().__init__()
        self.final_conv = nn.Conv3d(cin, 1, kernel_size=1)

    def forward(self, x):
        return torch.sigmoid(self.final_conv(x))


class UNet3D(nn.Module):
    def __init__(self, w=32):
        super().__init__()
        self.down_tr64, self.down_tr128 = Down(0, w), Down(1, w)
        self.down_tr256, self.down_tr512 = Down(2, w), Down(3, w)
        self.up_tr256, self.up_tr128, self.up_tr64 = Up(2, w), Up(1, w), Up(0, w)
        self.out_tr = Out(2 * w)

    def forward(self, x):
        s64, x = self.down_tr64(x)
        s128, x = self.down_tr128(x)
        s256, x = self.down_tr256(x)
        _, x = self.down_tr512(x)
        x = self.up_tr256(x, s256)
        x = self.up_tr128(x, s128)
        x = self.up_tr64(x, s64)
        return self.out_tr(x)


def write_state(f, group, sd):
    for name, t in sd.items():
        f.create_dataset(f"{group}/{name}", data=t.detach().cpu().numpy())


def main():
    out_path = sys.argv[1] if len(sys.argv) > 1 else "tests/golden/unet3d_w4.h5"
    torch.set_num_threads(1)
    torch.manual_seed(20240501)
    model = UNet3D(WIDTH)
    n_params = sum(p.numel() for p in model.parameters())
    assert sum(p.numel() for p in UNet3D(32).parameters()) == 19073665
    x = torch.rand(BATCH, 1, *SHAPE)
    target = torch.clamp(0.6 * x + 0.4 * torch.rand(BATCH, 1, *SHAPE), 0, 1)
    opt = torch.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM)
    loss_fn = nn.MSELoss()
    with h5py.File(out_path, "w") as f:
        f.attrs["width"], f.attrs["lr"], f.attrs["momentum"], f.attrs["steps"] = WIDTH, LR, MOMENTUM, STEPS
        f.attrs["torch_version"] = np.bytes_(str(torch.__version__))
        f.attrs["n_params"] = n_params
        f.create_dataset("input", data=x.numpy())
        f.create_dataset("target", data=target.numpy())
        write_state(f, "init", model.state_dict())
        losses = []
        for step in range(STEPS):
            opt.zero_grad()
            y = model(x)
            loss = loss_fn(y, target)
            loss.backward()
            losses.append(loss.item())
            if step == 0:
                f.create_dataset("output", data=y.detach().numpy())
                f.create_dataset("loss", data=np.float64(loss.item()))
                for name, p in model.named_parameters():
                    f.create_dataset(f"grad/{name}", data=p.grad.numpy())
                write_state(f, "bn_after_forward",
                            {k: v for k, v in model.state_dict().items() if ".bn1.running" in k or "num_batches" in k})
            opt.step()
        write_state(f, "sgd3", model.state_dict())
        f.create_dataset("sgd3_losses", data=np.array(losses, dtype=np.float64))
    print(f"wrote {out_path}: {n_params} parameters, losses {losses}")


if __name__ == "__main__":
    main()
