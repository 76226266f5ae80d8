#!/usr/bin/env python3
"""Converts a PyTorch checkpoint (.pth / .pt: a state_dict, or a dict holding
one under "state_dict" / "model") to safetensors, for lumen's
`init = "file.safetensors"` (pretrained vs scratch).

    .venv/bin/python tests/torch/convert_torch_checkpoint.py \\
        resnet18-f37072fd.pth resnet18.safetensors [--half]

A torchvision resnet18 state_dict has exactly the names of a lumen model with
blocks {2,2,2,2}, widths {64,128,256,512}, stem "7x7", stem_width 64
(resnet34: blocks {3,4,6,3}).  Loading it into lumen with reset_head keeps a
fresh classifier for lumen's labels (the 1000-class fc is reported, not
loaded), and into a 1-channel model sums conv1's RGB filters (reported).
Prefixes "module." (DataParallel) are stripped; non-tensor entries dropped.
--half stores F16 (half the size; lumen converts back to float on load).
"""
import argparse
import sys

import torch
from safetensors.torch import save_file


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("src")
    ap.add_argument("dst")
    ap.add_argument("--half", action="store_true", help="store floats as F16")
    args = ap.parse_args()
    obj = torch.load(args.src, map_location="cpu", weights_only=True)
    for key in ("state_dict", "model"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
    out = {}
    for name, t in obj.items():
        if not isinstance(t, torch.Tensor):
            continue
        name = name[len("module."):] if name.startswith("module.") else name
        if args.half and t.is_floating_point():
            t = t.half()
        out[name] = t.detach().contiguous()
    save_file(out, args.dst, metadata={"source": args.src})
    print(f"wrote {args.dst}: {len(out)} tensors")
    return 0


if __name__ == "__main__":
    sys.exit(main())
