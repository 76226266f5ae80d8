#!/usr/bin/env python3
"""The lumen default ResNet in PyTorch, timed like `runner bench`.

torchvision-style ResNet with BasicBlock (built here so torchvision is not
needed): conv1 7x7/2 + bn + relu + maxpool 3x3/2 (or 3x3/1 stem, no pool),
stages of BasicBlocks, global average pool, fc.  Trains with Adam on
synthetic data (BCEWithLogitsLoss), channels_last, then times inference
(eval mode, no_grad).  Prints one JSON line like runner bench:
{"train_img_s": ..., "infer_img_s": ..., ...} (medians over --steps).

usage: torch_resnet_bench.py [--size 300] [--channels 1] [--batch 32]
       [--steps 10] [--warmup 2] [--threads 2] [--blocks 1,1,1,1]
       [--widths 64,128,256,512] [--stem 7x7] [--no-channels-last]
       [--stem-width 64] [--device cpu|cuda] [--precision fp32|tf32|bf16]
On --device cuda: cudnn.benchmark = True, TF32 as --precision says (tf32:
on, fp32: off), bf16 = autocast(bfloat16) with fp32 master weights; every
timed step ends with torch.cuda.synchronize().
"""
import argparse
import json
import os
import statistics
import time

import torch
import torch.nn as nn


class BasicBlock(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False),
                                            nn.BatchNorm2d(cout))

    def forward(self, x):
        idt = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + idt)


class ResNet(nn.Module):
    def __init__(self, blocks, widths, in_channels=1, stem="7x7", num_classes=2,
                 stem_width=64, dropout=0.0):
        super().__init__()
        if stem == "7x7":
            self.conv1 = nn.Conv2d(in_channels, stem_width, 7, 2, 3, bias=False)
            self.maxpool = nn.MaxPool2d(3, 2, 1)
        else:
            self.conv1 = nn.Conv2d(in_channels, stem_width, 3, 1, 1, bias=False)
            self.maxpool = nn.Identity()
        self.bn1 = nn.BatchNorm2d(stem_width)
        self.relu = nn.ReLU(inplace=True)
        cin = stem_width
        for s, (nb, w) in enumerate(zip(blocks, widths)):
            layer = []
            for b in range(nb):
                layer.append(BasicBlock(cin, w, 2 if (s > 0 and b == 0) else 1))
                cin = w
            setattr(self, f"layer{s + 1}", nn.Sequential(*layer))
        self.nstages = len(blocks)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(cin, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        for s in range(self.nstages):
            x = getattr(self, f"layer{s + 1}")(x)
        x = torch.flatten(self.avgpool(x), 1)
        return self.fc(self.dropout(x))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, default=300)
    ap.add_argument("--channels", type=int, default=1)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--blocks", default="1,1,1,1")
    ap.add_argument("--widths", default="64,128,256,512")
    ap.add_argument("--stem", default="7x7")
    ap.add_argument("--no-channels-last", action="store_true")
    ap.add_argument("--stem-width", type=int, default=64)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--precision", default="tf32", choices=["fp32", "tf32", "bf16"])
    a = ap.parse_args()
    dev = torch.device(a.device)
    gpu = dev.type == "cuda"
    if gpu:
        torch.backends.cudnn.benchmark = True
        tf32 = a.precision != "fp32"
        torch.backends.cuda.matmul.allow_tf32 = tf32
        torch.backends.cudnn.allow_tf32 = tf32
    amp = torch.autocast("cuda", dtype=torch.bfloat16, enabled=gpu and a.precision == "bf16")

    def sync():
        if gpu:
            torch.cuda.synchronize()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    blocks = [int(v) for v in a.blocks.split(",")]
    widths = [int(v) for v in a.widths.split(",")]
    model = ResNet(blocks, widths, a.channels, a.stem, stem_width=a.stem_width)
    fmt = torch.contiguous_format if a.no_channels_last else torch.channels_last
    model = model.to(dev, memory_format=fmt)
    x = torch.randn(a.batch, a.channels, a.size, a.size).to(dev, memory_format=fmt)
    y = (torch.rand(a.batch, 2) < 0.3).float().to(dev)
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    lossf = nn.BCEWithLogitsLoss()
    model.train()
    tt = []
    for s in range(a.warmup + a.steps):
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        with amp:
            loss = lossf(model(x).float(), y)
        loss.backward()
        opt.step()
        sync()
        if s >= a.warmup:
            tt.append(time.perf_counter() - t0)
    model.eval()
    ti = []
    with torch.no_grad():
        for s in range(a.warmup + a.steps):
            t0 = time.perf_counter()
            with amp:
                model(x)
            sync()
            if s >= a.warmup:
                ti.append(time.perf_counter() - t0)
    mt, mi = statistics.median(tt), statistics.median(ti)
    print(json.dumps({
        "torch": torch.__version__, "batch": a.batch, "size": a.size,
        "channels": a.channels, "threads": a.threads, "steps": a.steps,
        "channels_last": not a.no_channels_last, "device": a.device, "precision": a.precision,
        "train_img_s": round(a.batch / mt, 3), "infer_img_s": round(a.batch / mi, 3),
        "train_ms_step": round(mt * 1e3, 2), "infer_ms_batch": round(mi * 1e3, 2),
        "loss": round(loss.item(), 5), "load_after": os.getloadavg()[0],
    }))


if __name__ == "__main__":
    main()
