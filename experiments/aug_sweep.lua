-- aug_sweep.lua -- which augmentation helps on the EL cells?
--
-- Question: does each step of the augmentation recipe (flips; all 8
-- symmetries of the square; + small rotations/shifts; + contrast,
-- brightness and gamma) raise the cross-fitted mean F1 over training
-- without augmentation, beyond seed-to-seed noise?
--
-- What it runs: ingest + normalize-stats once, then a grid of 5 augmentation
-- variants x 3 seeds = 15 trials of a small ResNet (one BasicBlock per
-- stage, widths 32-256) at 160x160 for 12 epochs, each validated with
-- thresholds tuned 2-fold cross-fitted (val/f1_mean_tuned_cv).  The table
-- compares every variant with "none" (the control), paired by seed, with a
-- 95% t interval: an interval that contains 0 means "no evidence".
--
-- Sized for `make run` on the 2-core machine: ~4 s per epoch on a 2-core
-- Xeon with AVX-512 (measured: the whole study in the README), about 2.5x
-- that on a 2-core Zen 3 (AVX2), so ~15 min here and ~35 min there.
-- The full-size study is one --set away:
--   runner experiments/aug_sweep.lua --set ingest.size=300 --set train.epochs=40 \
--          --set 'train.model.blocks={2,2,2,2}'
--   runner experiments/aug_sweep.lua --smoke           # 2 variants x 2 seeds, tiny: < 1 min
--   runner experiments/aug_sweep.lua --set sweep.seeds={1,2,3,4,5}   # tighter intervals
-- On the public ELPV download (no data.csv) it studies the `defective` label.
local lumen = require "lumen"

local geometry = { flip = true, rotate90 = true, rotate = 3, translate = 0.03 }
local photometric = { flip = true, rotate90 = true, rotate = 3, translate = 0.03,
                      contrast = 0.2, brightness = 0.05, gamma = 0.1 }

return lumen.experiment {
  name = "aug_sweep",
  seed = 42,
  description = "augmentation study: none / flips / 8 symmetries / +rotate+shift / +photometric, 3 seeds",
  stages = {
    lumen.ingest {
      csv = lumen.labels(),
      size = 160,
      channels = 1,
      split = { val = 0.2, stratify = true, seed = 42 },
    },
    lumen.normalize_stats {},
    lumen.sweep {
      strategy = "grid",
      seeds = { 1, 2, 3 },
      metric = "val/f1_mean_tuned_cv", goal = "max",
      space = {
        augment = lumen.variants {
          { "none", {} },
          { "flips", { flip = true } },
          { "dihedral", { flip = true, rotate90 = true } },
          { "+geometry", geometry },
          { "+photometric", photometric },
        },
      },
      timeout = 3600,
      stages = {
        lumen.augment {},
        lumen.train {
          model = lumen.resnet {
            blocks = { 1, 1, 1, 1 },
            widths = { 32, 64, 128, 256 },
            stem = "7x7", stem_width = 32,
            dropout = 0.1,
          },
          epochs = 12,
          batch = 32,
          optimizer = lumen.adamw { lr = 2e-3, weight_decay = 0.05 },
          schedule = lumen.cosine { warmup = 1, min_lr = 1e-5 },
          loss = lumen.bce { pos_weight = "auto" },
          ema = 0.99,
          metric = "val/ap_mean",
        },
        lumen.validate { thresholds = "tune" },
      },
    },
  },
}
