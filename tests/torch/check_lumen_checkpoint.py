#!/usr/bin/env python3
"""Loads a lumen checkpoint into the PyTorch twin and prints logits, so a test
or a benchmark can compare PyTorch's answer with `runner predict`.

    .venv/bin/python tests/torch/check_lumen_checkpoint.py \\
        runs/exp/run/best.safetensors img1.png img2.png ...

One JSON line per input on stdout:
    {"input": "img1.png", "logits": [..], "probs": [..],
     "predicted": ["crack"], "labels": ["crack", "inactive"]}
("predicted" uses the checkpoint's tuned thresholds, 0.5 when it has none).

Inputs:
  *.png   decoded here (pure Python: zlib + PNG filters; 8/16-bit gray, gray+
          alpha, RGB, RGBA, 8-bit palette, non-interlaced), converted to the
          model's channels like lumen's ingest (1 channel: a colour image
          becomes 0.299 R + 0.587 G + 0.114 B; 3: gray is replicated), resized
          to the checkpoint's "input" size like lumen (per axis: area average
          when shrinking, bilinear align_corners=False when growing, copy when
          equal), rounded to u8, then normalized with the checkpoint's
          "stats": (u8 / 255 - mean[c]) / std[c].
  *.npy   an array of pixels in 0..255, [H, W] or [C, H, W] (same path from
          the resize on), or with --raw the network input itself, [C, H, W]
          or [N, C, H, W], used as is.
The ELPV images are 300x300 8-bit gray: with a 300x300 input size nothing is
resized and the input is bit-identical to lumen's.  When an image is resized
or converted from colour, lumen may round intermediate values differently:
compare with a tolerance (~1e-3 on logits) in that case.

--double runs the network in float64 (a cleaner reference for lumen's float32).
"""
from __future__ import annotations

import argparse
import json
import os
import struct
import sys
import zlib
from typing import Any, Dict, List

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lumen_resnet import load_lumen  # noqa: E402


# ----------------------------------------------------------------- PNG --
def _unfilter(raw: bytes, width: int, height: int, bpp: int, row_bytes: int) -> np.ndarray:
    out = np.zeros((height, row_bytes), dtype=np.uint8)
    prev = np.zeros(row_bytes, dtype=np.int32)
    pos = 0
    for y in range(height):
        ftype = raw[pos]
        line = np.frombuffer(raw, dtype=np.uint8, count=row_bytes, offset=pos + 1).astype(np.int32)
        pos += 1 + row_bytes
        if ftype == 0:
            cur = line
        elif ftype == 2:
            cur = (line + prev) & 0xFF
        elif ftype in (1, 3, 4):
            cur = np.zeros(row_bytes, dtype=np.int32)
            for i in range(row_bytes):  # sequential: depends on the left pixel
                a = cur[i - bpp] if i >= bpp else 0
                b = prev[i]
                if ftype == 1:
                    p = a
                elif ftype == 3:
                    p = (a + b) >> 1
                else:
                    c = prev[i - bpp] if i >= bpp else 0
                    pa, pb, pc = abs(b - c), abs(a - c), abs(a + b - 2 * c)
                    p = a if (pa <= pb and pa <= pc) else (b if pb <= pc else c)
                cur[i] = (line[i] + p) & 0xFF
        else:
            raise ValueError(f"bad PNG filter type {ftype} in row {y}")
        out[y] = cur
        prev = cur
    return out


def read_png(path: str) -> np.ndarray:
    """[C, H, W] float64 samples in 0..255 (C = 1 gray, 3 colour; alpha dropped)."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError(f"{path}: not a PNG file")
    pos, idat, plte, hdr = 8, [], None, None
    while pos < len(data):
        (n,) = struct.unpack(">I", data[pos:pos + 4])
        kind = data[pos + 4:pos + 8]
        body = data[pos + 8:pos + 8 + n]
        pos += 12 + n
        if kind == b"IHDR":
            hdr = struct.unpack(">IIBBBBB", body)
        elif kind == b"PLTE":
            plte = np.frombuffer(body, dtype=np.uint8).reshape(-1, 3)
        elif kind == b"IDAT":
            idat.append(body)
        elif kind == b"IEND":
            break
    if hdr is None:
        raise ValueError(f"{path}: no IHDR chunk")
    w, h, depth, ctype, _, _, interlace = hdr
    if interlace:
        raise ValueError(f"{path}: interlaced PNG is not supported here (use .npy)")
    chans = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}[ctype]
    bits = depth * chans
    row_bytes = (w * bits + 7) // 8
    rows = _unfilter(zlib.decompress(b"".join(idat)), w, h, max(1, bits // 8), row_bytes)
    if depth == 16:
        s = rows.view(">u2").reshape(h, w, chans).astype(np.float64)
        s = np.floor(s / 257.0 + 0.5)
    elif depth == 8:
        s = rows.reshape(h, w, chans).astype(np.float64)
    else:  # 1, 2, 4-bit gray or palette
        bitsarr = np.unpackbits(rows, axis=1).reshape(h, -1)[:, : w * depth]
        vals = bitsarr.reshape(h, w, depth) @ (1 << np.arange(depth - 1, -1, -1))
        s = vals.reshape(h, w, 1).astype(np.float64)
        if ctype == 0:
            s = s * (255.0 / ((1 << depth) - 1))
    if ctype == 3:
        if plte is None:
            raise ValueError(f"{path}: palette image without PLTE")
        s = plte[s[..., 0].astype(np.int64)].astype(np.float64)
    if s.shape[2] in (2, 4):
        s = s[..., :-1]  # alpha ignored, as in lumen
    return s.transpose(2, 0, 1)


# -------------------------------------------------------------- resize --
def _axis_matrix(n_in: int, n_out: int) -> np.ndarray:
    """[n_out, n_in] weights of lumen's per-axis resize."""
    m = np.zeros((n_out, n_in))
    if n_out == n_in:
        return np.eye(n_in)
    scale = n_in / n_out
    if n_out < n_in:  # exact box filter
        for i in range(n_out):
            lo, hi = i * scale, (i + 1) * scale
            for j in range(int(np.floor(lo)), min(int(np.ceil(hi)), n_in)):
                m[i, j] = (min(hi, j + 1) - max(lo, j)) / scale
    else:  # bilinear, align_corners=False
        for i in range(n_out):
            src = min(max((i + 0.5) * scale - 0.5, 0.0), n_in - 1.0)
            j0 = int(np.floor(src))
            j1 = min(j0 + 1, n_in - 1)
            f = src - j0
            m[i, j0] += 1 - f
            m[i, j1] += f
    return m


def to_channels(img: np.ndarray, c: int) -> np.ndarray:
    if img.shape[0] == c:
        return img
    if c == 1 and img.shape[0] == 3:
        return 0.299 * img[0:1] + 0.587 * img[1:2] + 0.114 * img[2:3]
    if c == 3 and img.shape[0] == 1:
        return np.repeat(img, 3, axis=0)
    raise ValueError(f"cannot convert {img.shape[0]} channels to {c}")


def preprocess(img: np.ndarray, meta: Dict[str, Any]) -> np.ndarray:
    inp = meta.get("input") or {}
    c = meta["model"].get("in_channels", 1)
    img = to_channels(img, c)
    hh, ww = inp.get("height", img.shape[1]), inp.get("width", img.shape[2])
    if (hh, ww) != img.shape[1:]:
        my, mx = _axis_matrix(img.shape[1], hh), _axis_matrix(img.shape[2], ww)
        img = np.einsum("yh,chw,xw->cyx", my, img, mx)
    u8 = np.clip(np.floor(img + 0.5), 0, 255)
    stats = meta.get("stats")
    if not stats:
        raise ValueError("the checkpoint has no \"stats\" metadata: pass --raw inputs")
    mean = np.asarray(stats["mean"], dtype=np.float64).reshape(-1, 1, 1)
    std = np.asarray(stats["std"], dtype=np.float64).reshape(-1, 1, 1)
    return ((u8 / 255.0 - mean) / std).astype(np.float32)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("checkpoint")
    ap.add_argument("inputs", nargs="+", help="PNG images or .npy arrays")
    ap.add_argument("--raw", action="store_true",
                    help=".npy inputs are the normalized network input")
    ap.add_argument("--double", action="store_true", help="compute in float64")
    args = ap.parse_args()

    model, meta = load_lumen(args.checkpoint)
    if args.double:
        model = model.double()
    dtype = torch.float64 if args.double else torch.float32
    labels: List[str] = meta.get("labels") or [f"class{i}" for i in
                                               range(meta["model"]["num_classes"])]
    thresholds = meta.get("thresholds") or [0.5] * len(labels)
    for path in args.inputs:
        if path.endswith(".npy"):
            arr = np.load(path)
            if args.raw:
                batch = arr if arr.ndim == 4 else arr[None]
            else:
                batch = preprocess((arr[None] if arr.ndim == 2 else arr).astype(np.float64),
                                   meta)[None]
        else:
            batch = preprocess(read_png(path), meta)[None]
        with torch.no_grad():
            logits = model(torch.from_numpy(np.ascontiguousarray(batch)).to(dtype))
        for i, row in enumerate(logits.tolist()):
            probs = torch.sigmoid(torch.tensor(row, dtype=torch.float64)).tolist()
            name = path if len(logits) == 1 else f"{path}[{i}]"
            print(json.dumps({"input": name, "logits": row, "probs": probs,
                              "predicted": [lab for lab, p, t in zip(labels, probs, thresholds)
                                            if p >= t],
                              "labels": labels}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
