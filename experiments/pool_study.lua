-- pool_study.lua -- does a max-pooled head find the cracks that the global
-- average dilutes?
--
-- Question: best.lua's ResNet ends in torchvision's global average pool:
-- at 160 px the last feature map is 5x5, and a thin crack that lights up
-- one or two of those 25 positions is averaged with 23 quiet ones before
-- the classifier sees it.  A global max pool keeps the strongest response
-- wherever it is (the usual head for small, local defects); "avgmax", the
-- mean of the two, keeps the average's smoother gradient as well.  Every
-- other study so far changed the input, the body or the training; this one
-- changes only the head (no parameters added).
--
-- What it runs: 5-fold CV (lumen.crossval, folds stratified by label
-- combination, thresholds nested) of best.lua's recipe with
-- train.model.pool = "avg" (the control), "max" and "avgmax"; the same
-- folds in every arm, so differences pair fold by fold.
--
-- Measured (2026-12-07, ../shared/data/elpv, 1,700 cells, seed 1; 2-core
-- "Intel(R) Xeon(R) Processor" (AVX-512), 2 trials at a time with 1 thread
-- each; 1,727 s, ~200-235 s per trial):
--           f1_mean [95% t]        paired diff       crack F1 (diff)           inactive F1 (diff)        ap_mean (diff)
--   avg     0.747 [0.681, 0.813]   --                0.692                     0.801                     0.801
--   max     0.721 [0.679, 0.763]   -0.026 +- 0.043   0.672 (-0.020 +- 0.035)   0.770 (-0.032 +- 0.054)   0.796 (-0.005 +- 0.032)
--   avgmax  0.719 [0.683, 0.755]   -0.028 +- 0.053   0.670 (-0.022 +- 0.064)   0.768 (-0.034 +- 0.048)   0.799 (-0.003 +- 0.025)
-- The control reproduced best.lua's folds to the digit (0.7469).
-- Conclusion: neither head helps.  Both rank the cells as well as the
-- average does (mean AP within 0.005, crack AP -0.003 / -0.008), and their
-- F1 point estimates are lower on both labels (within the intervals): the
-- average is not what hides the cracks.  best.lua keeps pool = "avg".
--   runner experiments/pool_study.lua --set crossval.parallel=2 --threads 2
--   runner experiments/pool_study.lua --smoke     # < 1 min
local lumen = require "lumen"
local small = require "small_recipe"

return lumen.experiment {
  name = "pool_study",
  seed = 42,
  description = "5-fold CV: best.lua's recipe with a global max and an avg+max pooled head vs the average",
  stages = {
    lumen.crossval {
      folds = 5,
      seeds = { 1 },
      space = {
        pool = lumen.variants {
          { "avg", { ["train.model.pool"] = "avg" } },
          { "max", { ["train.model.pool"] = "max" } },
          { "avgmax", { ["train.model.pool"] = "avgmax" } },
        },
      },
      timeout = 7200,
      stages = small.best_stages(), -- lua/small_recipe.lua: best.lua's recipe
    },
  },
}
