-- aug_sweep.lua -- which augmentation helps on the EL cells?
--
-- Question: does each step of the augmentation recipe (flips; all 8
-- symmetries of the square; + small rotations/shifts; + contrast,
-- brightness and gamma) raise the cross-fitted mean F1 over training
-- without augmentation, beyond seed-to-seed noise?
--
-- What it runs: ingest + normalize-stats once, then a grid of 5 augmentation
-- variants x 3 seeds = 15 trials of the small recipe (lua/small_recipe.lua:
-- one BasicBlock per stage, widths 32-256, 160x160, 12 epochs), each
-- validated with thresholds tuned 2-fold cross-fitted
-- (val/f1_mean_tuned_cv).  The table compares every variant with "none"
-- (the control), paired by seed, with a 95% t interval: an interval that
-- contains 0 means "no evidence".
--
-- Measured (2026-12-06, ../shared/data/elpv, 1359 train / 341 val cells,
-- 2-core Xeon with AVX-512; 1215 s with other builds sharing the 2 cores,
-- ~55 s per trial when quiet, so ~15 min; expect ~2.5x on a 2-core Zen 3):
--   dihedral      0.795 +- 0.004 (sd)   +0.018 +- 0.054 vs none
--   none          0.776 +- 0.020        (control)
--   +geometry     0.762 +- 0.008        -0.015 +- 0.064
--   flips         0.757 +- 0.016        -0.020 +- 0.071
--   +photometric  0.749 +- 0.036        -0.027 +- 0.039
-- Conclusion: at this size and length no variant differs from "none"
-- beyond its interval; the 8 symmetries rank first and are the steadiest
-- over seeds, the photometric jitter ranks last (12 epochs may be too short
-- for the harder inputs).  Three seeds cannot separate effects of ~0.02.
--
-- The full-size study is one --set away:
--   runner experiments/aug_sweep.lua --set ingest.size=300 --set train.epochs=40 \
--          --set 'train.model.blocks={2,2,2,2}'
--   runner experiments/aug_sweep.lua --smoke           # 2 variants x 2 seeds, tiny: < 1 min
--   runner experiments/aug_sweep.lua --set sweep.seeds={1,2,3,4,5}   # tighter intervals
-- On the public ELPV download (no data.csv) it studies the `defective` label.
local lumen = require "lumen"
local small = require "small_recipe"

local geometry = { flip = true, rotate90 = true, rotate = 3, translate = 0.03 }
local photometric = { flip = true, rotate90 = true, rotate = 3, translate = 0.03,
                      contrast = 0.2, brightness = 0.05, gamma = 0.1 }

return lumen.experiment {
  name = "aug_sweep",
  seed = 42,
  description = "augmentation study: none / flips / 8 symmetries / +rotate+shift / +photometric, 3 seeds",
  stages = {
    lumen.ingest(small.ingest { csv = lumen.labels() }),
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
        lumen.train(small.train { ema = 0.99 }),
        lumen.validate { thresholds = "tune" },
      },
    },
  },
}
