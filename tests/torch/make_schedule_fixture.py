#!/usr/bin/env python3
"""Writes tests/fixtures/schedule_torch.json: learning rates PyTorch's own
schedulers produce, which tests/unit/test_schedule.c must reproduce (1e-9).

Run with a Python that has torch:
    .venv/bin/python tests/torch/make_schedule_fixture.py

Conventions matched by stages/common/schedule.c:
  - epoch schedules (constant, step, multistep): scheduler.step() once per
    epoch; "lr" lists the lr used during epoch 0, 1, ...
  - cosine: stepped once per optimiser step (per-step granularity); "lr" lists
    the lr of global step 0, 1, ... = epoch * steps_per_epoch + step.  With
    warmup: SequentialLR(LinearLR(start_factor, total_iters=W),
    CosineAnnealingLR(T_max=T-W, eta_min=min_lr), milestones=[W]),
    W = round(warmup * steps_per_epoch), T = epochs * steps_per_epoch.
  - plateau: ReduceLROnPlateau(mode, factor, patience, threshold,
    threshold_mode="rel", cooldown, min_lr).step(metric) once per epoch; "lr"
    lists the lr after each step (the lr of the next epoch).
"""
import json
import math
import os
import random

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "fixtures", "schedule_torch.json")


def opt(lr):
    p = torch.nn.Parameter(torch.zeros(1))
    return torch.optim.SGD([p], lr=lr)


def lr_of(o):
    return o.param_groups[0]["lr"]


def epoch_case(name, cfg, make, epochs):
    o = opt(cfg["lr"])
    s = make(o) if make else None
    lrs = []
    for _ in range(epochs):
        lrs.append(lr_of(o))
        o.step()
        if s:
            s.step()
    return {"name": name, "config": cfg, "lr": lrs}


def cosine_case(name, cfg):
    o = opt(cfg["lr"])
    spe, epochs = cfg["steps_per_epoch"], cfg["epochs"]
    total = spe * epochs
    w = int(round(cfg["warmup"] * spe))
    if w > 0:
        lin = torch.optim.lr_scheduler.LinearLR(
            o, start_factor=cfg["warmup_start_factor"], end_factor=1.0, total_iters=w)
        cos = torch.optim.lr_scheduler.CosineAnnealingLR(
            o, T_max=total - w, eta_min=cfg["min_lr"])
        s = torch.optim.lr_scheduler.SequentialLR(o, [lin, cos], milestones=[w])
    else:
        s = torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=total, eta_min=cfg["min_lr"])
    lrs = []
    for _ in range(total):
        lrs.append(lr_of(o))
        o.step()
        s.step()
    return {"name": name, "config": cfg, "lr": lrs}


def plateau_case(name, cfg, metrics):
    o = opt(cfg["lr"])
    s = torch.optim.lr_scheduler.ReduceLROnPlateau(
        o, mode=cfg["mode"], factor=cfg["factor"], patience=cfg["patience"],
        threshold=cfg["threshold"], threshold_mode="rel", cooldown=cfg["cooldown"],
        min_lr=cfg["min_lr"])
    lrs = []
    for m in metrics:
        o.step()
        s.step(m)
        lrs.append(lr_of(o))
    return {"name": name, "config": cfg, "metrics": metrics, "lr": lrs}


def walk(seed, n, start, drift, noise, flat_every=0):
    r = random.Random(seed)
    v, out = start, []
    for i in range(n):
        if not (flat_every and i % flat_every == flat_every - 1):
            v += drift + r.uniform(-noise, noise)
        out.append(round(v, 6))
    return out


def main():
    cases = []
    cases.append(epoch_case("constant", {"kind": "constant", "lr": 0.01}, None, 6))
    cases.append(epoch_case(
        "step", {"kind": "step", "lr": 0.1, "step_size": 3, "gamma": 0.5},
        lambda o: torch.optim.lr_scheduler.StepLR(o, step_size=3, gamma=0.5), 12))
    cases.append(epoch_case(
        "multistep", {"kind": "multistep", "lr": 0.1, "milestones": [3, 5, 5, 9], "gamma": 0.1},
        lambda o: torch.optim.lr_scheduler.MultiStepLR(o, milestones=[3, 5, 5, 9], gamma=0.1), 12))
    cases.append(cosine_case("cosine", {
        "kind": "cosine", "lr": 0.1, "epochs": 6, "steps_per_epoch": 4,
        "warmup": 0, "warmup_start_factor": 1.0 / 3, "min_lr": 1e-4}))
    cases.append(cosine_case("cosine_warmup", {
        "kind": "cosine", "lr": 0.05, "epochs": 8, "steps_per_epoch": 5,
        "warmup": 2, "warmup_start_factor": 0.1, "min_lr": 0.0}))
    cases.append(cosine_case("cosine_warmup_frac", {
        "kind": "cosine", "lr": 0.001, "epochs": 30, "steps_per_epoch": 37,
        "warmup": 1.5, "warmup_start_factor": 0.01, "min_lr": 1e-6}))
    cases.append(plateau_case("plateau_min", {
        "kind": "plateau", "lr": 0.1, "mode": "min", "factor": 0.5, "patience": 2,
        "threshold": 0.01, "cooldown": 1, "min_lr": 0.002},
        walk(1, 60, 1.0, -0.01, 0.03, flat_every=5)))
    cases.append(plateau_case("plateau_max", {
        "kind": "plateau", "lr": 0.01, "mode": "max", "factor": 0.3, "patience": 1,
        "threshold": 1e-4, "cooldown": 0, "min_lr": 0.0},
        walk(2, 40, 0.5, 0.004, 0.02, flat_every=3)))
    doc = {"generator": "tests/torch/make_schedule_fixture.py",
           "torch": torch.__version__, "cases": cases}
    with open(OUT, "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")
    print("wrote", os.path.relpath(OUT), len(cases), "cases")


if __name__ == "__main__":
    main()
