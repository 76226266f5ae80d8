-- crossval.lua -- how good is the small recipe, honestly, and do a higher
-- input resolution or test-time augmentation make it better?
--
-- What it runs: 5-fold cross-validation (lumen.crossval) of the small
-- recipe (lua/small_recipe.lua with the 8 symmetries and a weight average:
-- aug_sweep's best) against two candidates, each on the same 5 folds, so
-- the differences are paired by fold:
--   control  160x160, 7x7/2 stem + max pool (160 px -> 40 at once)
--   res224   224x224 input: cracks are thin lines, and the stem shrinks
--            them by 4 at once (~2x the compute)
--   tta      the control's training, validated with the mean over the 8
--            dihedral views (no extra training cost at prediction time
--            beyond 8 forward passes)
-- Folds are stratified by label combination; each fold is scored with
-- thresholds tuned on the other folds' out-of-fold predictions (never on
-- the fold itself); the table gives per-label F1 and AP, mean F1 and mean
-- AP with mean, sd and a 95% t interval over the folds.
--
--   runner experiments/crossval.lua                  # 3 x 5 = 15 trials
--   runner experiments/crossval.lua --smoke          # 2 configurations x 3 folds, tiny
--   runner predict runs/crossval/<run>/ensemble.json --csv cells.csv   # the fold ensemble
--
-- Measured: see the header lines below (filled in from the run).
local lumen = require "lumen"
local small = require "small_recipe"

return lumen.experiment {
  name = "crossval",
  seed = 42,
  description = "5-fold CV of the small recipe vs 224 px input and TTA, paired by fold",
  stages = {
    lumen.crossval {
      folds = 5,
      seeds = { 1 },
      space = {
        recipe = lumen.variants {
          { "control", { ["train.epochs"] = 12 } },
          { "res224", { ["ingest.size"] = 224 } },
        },
      },
      timeout = 3600,
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
