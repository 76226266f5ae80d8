-- recipe_study2.lua -- on top of 30 epochs (recipe_study.lua's best mean
-- AP), which of mixup, a longer schedule and a deeper network raise the
-- cross-validated mean F1?
--
-- What it runs: 5-fold cross-validation (lumen.crossval, folds stratified
-- by label combination, thresholds tuned on the other folds' out-of-fold
-- predictions, every fold scored at its last epoch) of four recipes on the
-- same folds, so the differences are paired by fold against "e30":
--   e30        the small recipe (lua/small_recipe.lua) trained 30 epochs
--   e30_mixup  + mixup with alpha 0.2 (train.mixup)
--   e60        60 epochs
--   e30_b2     two BasicBlocks per stage ({2,2,2,2}, ResNet-18 depth at
--              the small widths; ~2x the compute)
--
-- Measured (2026-12-06, ../shared/data/elpv, 1700 cells, 5 folds, seed 1,
-- last epoch; 2-core "Intel(R) Xeon(R) Processor" (AVX-512), 2 trials at a
-- time, 1 thread each: 3962 s; ~250 s per 30-epoch, ~510 s per 60-epoch and
-- ~465 s per {2,2,2,2} trial in that setting):
--   recipe     f1_mean                diff (paired)     f1_crack  f1_inactive  ap_mean  diff ap_mean
--   e30        0.730 [0.695, 0.766]   (control)         0.667     0.794        0.799
--   e30_mixup  0.726 [0.673, 0.780]   -0.004 +- 0.021   0.676     0.776        0.803    +0.004 +- 0.014
--   e60        0.736 [0.711, 0.761]   +0.006 +- 0.030   0.657     0.815        0.793    -0.006 +- 0.020
--   e30_b2     0.715 [0.676, 0.755]   -0.015 +- 0.048   0.668     0.763        0.795    -0.004 +- 0.026
-- (the e30 row reproduces recipe_study.lua's e30 row: same recipe, folds
-- and seed.)  Conclusion: none of the three moves the mean F1 or the mean
-- AP beyond its interval; mixup's crack AP +0.005 +- 0.005 is the only
-- interval clear of 0, and too small to matter.  Nothing is adopted.
--   runner experiments/recipe_study2.lua --set crossval.parallel=2 --threads 2
--   runner experiments/recipe_study2.lua --smoke
local lumen = require "lumen"
local small = require "small_recipe"

return lumen.experiment {
  name = "recipe_study2",
  seed = 42,
  description = "5-fold CV: mixup, 60 epochs and {2,2,2,2} blocks vs the small recipe at 30 epochs",
  stages = {
    lumen.crossval {
      folds = 5,
      seeds = { 1 },
      space = {
        recipe = lumen.variants {
          { "e30", { ["train.epochs"] = 30 } },
          { "e30_mixup", { ["train.epochs"] = 30, ["train.mixup"] = 0.2 } },
          { "e60", { ["train.epochs"] = 60 } },
          { "e30_b2", { ["train.epochs"] = 30, ["train.model.blocks"] = { 2, 2, 2, 2 } } },
        },
      },
      timeout = 5400,
      stages = {
        lumen.ingest(small.ingest { csv = lumen.labels() }),
        lumen.normalize_stats {},
        lumen.augment { flip = true, rotate90 = true },
        lumen.train(small.train { ema = 0.99 }),
        lumen.validate { thresholds = "tune" },
      },
    },
  },
}
