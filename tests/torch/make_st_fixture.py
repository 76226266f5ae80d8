#!/usr/bin/env python3
"""Writes small fixtures with the Python `safetensors` library:

tests/fixtures/st_python.safetensors  for tests/unit/test_safetensors.c, which
    reads it, checks every value below and checks that lumen's writer
    reproduces the file byte for byte.
tests/fixtures/twin_rgb_f16.safetensors  for tests/unit/test_checkpoint.c: the
    state_dict of the torch twin (tests/torch/lumen_resnet.py) of an RGB
    model, config TWIN below (3x3 stem, stem_width 6 != widths[0] so
    layer1.0 has a stride-1 downsample, two blocks in stage 1), stored as
    F16 like a half-precision pretrained file; metadata "model" = TWIN.

Run by hand from the repository root when the fixture must change:

    .venv/bin/python tests/torch/make_st_fixture.py

The values are fixed literals (no RNG): the C test repeats them.
"""
import json
import os
import sys

import torch
from safetensors.torch import save_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lumen_resnet import LumenResNet  # noqa: E402

TWIN = {"arch": "resnet", "blocks": [2, 1], "widths": [4, 8], "in_channels": 3,
        "stem": "3x3", "stem_width": 6, "dropout": 0, "num_classes": 5}
TWIN_OUT = os.path.join(os.path.dirname(__file__), "..", "fixtures", "twin_rgb_f16.safetensors")
OUT = os.path.join(os.path.dirname(__file__), "..", "fixtures", "st_python.safetensors")


def main() -> int:
    tensors = {
        "weight": torch.tensor([[0.5, -1.25, 3.0], [1e-3, -0.0, 65504.0]], dtype=torch.float32),
        # 1, -2.5, smallest normal half, smallest subnormal half, +inf
        "half": torch.tensor([1.0, -2.5, 2.0**-14, 2.0**-24, float("inf")], dtype=torch.float16),
        "brain": torch.tensor([1.0, -3.140625, 2.0**100], dtype=torch.bfloat16),
        "double": torch.tensor([0.1, -1e300], dtype=torch.float64),
        "count": torch.tensor(7, dtype=torch.int64),  # a scalar, like num_batches_tracked
        "idx": torch.tensor([-1, 0, 2147483647], dtype=torch.int32),
        "bytes": torch.tensor([[0, 1], [254, 255]], dtype=torch.uint8),
        "mask": torch.tensor([True, False, True]),
        "i8": torch.tensor([-128, 127], dtype=torch.int8),
        "i16": torch.tensor([-32768, 32767], dtype=torch.int16),
        "empty": torch.zeros((0, 3), dtype=torch.float32),
    }
    save_file(tensors, OUT, metadata={"format": "pt"})
    print(f"wrote {os.path.normpath(OUT)} ({os.path.getsize(OUT)} bytes)")

    torch.manual_seed(7)
    twin = LumenResNet.from_config(TWIN)
    with torch.no_grad():  # non-trivial BN values and counters
        for m in twin.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5)
                m.bias.normal_(0, 0.1)
                m.running_mean.normal_(0, 0.1)
                m.running_var.uniform_(0.5, 1.5)
                m.num_batches_tracked.fill_(11)
    sd = {k: (v if v.dtype == torch.int64 else v.half()).contiguous()
          for k, v in twin.state_dict().items()}
    save_file(sd, TWIN_OUT, metadata={"model": json.dumps(TWIN, separators=(",", ":"))})
    print(f"wrote {os.path.normpath(TWIN_OUT)} ({os.path.getsize(TWIN_OUT)} bytes, "
          f"{len(sd)} tensors)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
