"""The PyTorch twin of lumen's ResNet, and a loader for lumen checkpoints.

The module is exactly the network lumen trains (kernels/nn_model.h): a
torchvision-style ResNet with BasicBlocks and the same state_dict names
(conv1, bn1, layer{i}.{j}.conv1/bn1/conv2/bn2/downsample.0/.1, fc), so a
lumen checkpoint loads with strict=True:

    import sys; sys.path.insert(0, "tests/torch")
    from lumen_resnet import load_lumen
    model, meta = load_lumen("runs/exp/run/best.safetensors")   # eval mode
    probs = torch.sigmoid(model(x))          # x: [N, C, H, W], normalized
    # normalized x = (pixels / 255 - mean) / std with meta["stats"]

Config keys (the "model" metadata JSON of a checkpoint):
    blocks       BasicBlocks per stage, e.g. [2, 2, 2, 2] (resnet18)
    widths       channels per stage, e.g. [64, 128, 256, 512]
    in_channels  image channels (1 for the ELPV images)
    stem         "7x7": conv 7x7/2 pad 3 + BN + ReLU + maxpool 3x3/2 pad 1
                 "3x3": conv 3x3/1 pad 1 + BN + ReLU, no maxpool
                 "7x7-nopool": conv 7x7/2 pad 3 + BN + ReLU, no maxpool
    stem_width   conv1 filters (torchvision: 64)
    dropout      nn.Dropout before fc (no parameters)
    pool         "avg" (default), "max" or "avgmax" (the mean of the two): the
                 global pool before fc; first max wins (F.adaptive_max_pool2d)
    num_classes  logits (one per label; sigmoid, multi-label)
Stage s > 0 starts with a stride-2 block; a block gets a downsample
(1x1 conv with the block's stride + BN) when its stride is not 1 or its
channel count changes.  BN: eps 1e-5, momentum 0.1 (torch defaults).

Needs torch and safetensors only (no torchvision).
"""
from __future__ import annotations

import json
from typing import Any, Dict, Sequence, Tuple

import torch
from torch import nn
import torch.nn.functional as F

DEFAULT_CONFIG: Dict[str, Any] = {
    "arch": "resnet",
    "blocks": [1, 1, 1, 1],
    "widths": [64, 128, 256, 512],
    "in_channels": 1,
    "stem": "7x7",
    "stem_width": 64,
    "dropout": 0.0,
    "pool": "avg",
    "num_classes": 2,
}


class BasicBlock(nn.Module):
    """conv3x3(stride) - BN - ReLU - conv3x3 - BN, plus the shortcut, ReLU."""

    def __init__(self, inplanes: int, planes: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = None
        if stride != 1 or inplanes != planes:
            self.downsample = nn.Sequential(
                nn.Conv2d(inplanes, planes, 1, stride, bias=False), nn.BatchNorm2d(planes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        identity = x if self.downsample is None else self.downsample(x)
        return self.relu(out + identity)


class GlobalPool(nn.Module):
    """(1 - w) mean + w max over H, W -> [N, C, 1, 1]; w = 0, 1, 0.5 for the
    pools "avg", "max", "avgmax" (lumen's NN_OP_GAP)."""

    WEIGHT = {"avg": 0.0, "max": 1.0, "avgmax": 0.5}

    def __init__(self, pool: str = "avg") -> None:
        super().__init__()
        if pool not in self.WEIGHT:
            raise ValueError(f"pool must be 'avg', 'max' or 'avgmax', got {pool!r}")
        self.w = self.WEIGHT[pool]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        avg = F.adaptive_avg_pool2d(x, 1)
        if self.w == 0.0:
            return avg
        mx = F.adaptive_max_pool2d(x, 1)
        return mx if self.w == 1.0 else (1.0 - self.w) * avg + self.w * mx


class LumenResNet(nn.Module):
    def __init__(self, blocks: Sequence[int] = (1, 1, 1, 1),
                 widths: Sequence[int] = (64, 128, 256, 512), in_channels: int = 1,
                 stem: str = "7x7", stem_width: int = 64, dropout: float = 0.0,
                 num_classes: int = 2, pool: str = "avg") -> None:
        super().__init__()
        if len(blocks) != len(widths) or not blocks:
            raise ValueError("blocks and widths need the same, non-zero length")
        if stem not in ("7x7", "3x3", "7x7-nopool"):
            raise ValueError(f"stem must be '7x7', '3x3' or '7x7-nopool', got {stem!r}")
        self.config = {"arch": "resnet", "blocks": list(blocks), "widths": list(widths),
                       "in_channels": in_channels, "stem": stem, "stem_width": stem_width,
                       "dropout": dropout, "num_classes": num_classes}
        if pool != "avg":  # lumen writes the key only when it is not the default
            self.config["pool"] = pool
        if stem in ("7x7", "7x7-nopool"):
            self.conv1 = nn.Conv2d(in_channels, stem_width, 7, 2, 3, bias=False)
        else:
            self.conv1 = nn.Conv2d(in_channels, stem_width, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(stem_width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1) if stem == "7x7" else nn.Identity()
        inplanes = stem_width
        self.num_stages = len(blocks)
        for s, (nb, w) in enumerate(zip(blocks, widths)):
            layer = []
            for b in range(nb):
                layer.append(BasicBlock(inplanes, w, 2 if (s > 0 and b == 0) else 1))
                inplanes = w
            setattr(self, f"layer{s + 1}", nn.Sequential(*layer))
        self.avgpool = GlobalPool(pool)
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(inplanes, num_classes)
        # torchvision's init (the values do not matter for loading)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    @classmethod
    def from_config(cls, cfg: Dict[str, Any] | str) -> "LumenResNet":
        if isinstance(cfg, str):
            cfg = json.loads(cfg)
        c = dict(DEFAULT_CONFIG)
        unknown = set(cfg) - set(c)
        if unknown:
            raise ValueError(f"unknown model config keys: {sorted(unknown)}")
        c.update(cfg)
        if c["arch"] != "resnet":
            raise ValueError(f"model.arch must be 'resnet', got {c['arch']!r}")
        return cls(c["blocks"], c["widths"], c["in_channels"], c["stem"], c["stem_width"],
                   float(c["dropout"]), c["num_classes"], c["pool"])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        for s in range(self.num_stages):
            x = getattr(self, f"layer{s + 1}")(x)
        x = torch.flatten(self.avgpool(x), 1)
        return self.fc(self.dropout(x))


# Metadata entries of a lumen checkpoint that hold JSON (the rest are text).
JSON_META = ("model", "labels", "stats", "thresholds", "metrics", "input")


def read_lumen_meta(path: str) -> Dict[str, Any]:
    """The checkpoint's metadata with JSON entries parsed and epoch as int."""
    from safetensors import safe_open
    with safe_open(path, framework="pt") as f:
        raw = f.metadata() or {}
    if raw.get("format") != "lumen-checkpoint":
        raise ValueError(f"{path}: not a lumen checkpoint (format {raw.get('format')!r})")
    if raw.get("version") != "1":
        raise ValueError(f"{path}: unsupported lumen checkpoint version {raw.get('version')!r}")
    meta: Dict[str, Any] = dict(raw)
    for k in JSON_META:
        if k in meta:
            meta[k] = json.loads(meta[k])
    if "epoch" in meta:
        meta["epoch"] = int(meta["epoch"])
    return meta


def load_lumen(path: str, device: str = "cpu") -> Tuple[LumenResNet, Dict[str, Any]]:
    """Builds the twin from a lumen checkpoint's metadata and loads its
    state_dict strictly; returns (model in eval mode, metadata)."""
    from safetensors.torch import load_file
    meta = read_lumen_meta(path)
    model = LumenResNet.from_config(meta["model"])
    model.load_state_dict(load_file(path, device=device), strict=True)
    return model.to(device).eval(), meta


def normalize(pixels: torch.Tensor, stats: Dict[str, Any]) -> torch.Tensor:
    """[N, C, H, W] pixels in 0..255 -> the network input lumen feeds:
    (pixels / 255 - mean[c]) / std[c] with the checkpoint's "stats"."""
    mean = torch.tensor(stats["mean"], dtype=torch.float32).view(1, -1, 1, 1)
    std = torch.tensor(stats["std"], dtype=torch.float32).view(1, -1, 1, 1)
    return (pixels.float() / 255.0 - mean) / std
