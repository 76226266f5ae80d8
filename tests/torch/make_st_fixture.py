#!/usr/bin/env python3
"""Writes tests/fixtures/st_python.safetensors with the Python `safetensors`
library, for tests/unit/test_safetensors.c (which reads it, checks every value
below and checks that lumen's writer reproduces the file byte for byte).

Run by hand from the repository root when the fixture must change:

    /root/torchvenv/bin/python tests/torch/make_st_fixture.py

The values are fixed literals (no RNG): the C test repeats them.
"""
import os
import sys

import torch
from safetensors.torch import save_file

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
    return 0


if __name__ == "__main__":
    sys.exit(main())
