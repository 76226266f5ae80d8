-- recipe_study3.lua -- two more changes to best.lua's recipe: the focal
-- loss without the positive weight, and finer feature maps for the cracks.
--
-- Questions, each against best.lua's recipe (30 epochs, focal gamma 2 with
-- pos_weight = auto, the control):
--  * pos_weight = 1: the focal loss already up-weights the hard cells, and
--    with BCE at 12 epochs pos_weight = 1 raised the crack F1 by +0.031 +-
--    0.010 (recipe_study.lua); the focal paper even weights the positives
--    down (alpha 0.25).
--  * the "7x7-nopool" stem: the 7x7/2 conv without the 3x3/2 max pool, so a
--    160 px cell enters layer1 at 80x80 instead of 40x40 (about 4x the
--    FLOPs after the stem).  The crack false negatives in validate's
--    errors.png are mostly mono cells with one thin line; 224 px input did
--    not help (resolution_study.lua), finer maps of the same input might.
--
-- What it runs: 5-fold CV (lumen.crossval, folds stratified by label
-- combination, thresholds nested) of the three recipes, paired by fold.
--
-- Measured (2026-12-06, ../shared/data/elpv, 1,700 cells, seed 1; 2-core
-- "Intel(R) Xeon(R) Processor" (AVX-512), 2 trials at a time with 1 thread
-- each, sharing the cores with ensemble_study.lua; 4,112 s: ~420 s per
-- control trial while shared, ~650-690 s per 7x7-nopool trial):
--                    f1_mean [95% t]        paired diff       crack F1 (diff)     inactive F1 (diff)   ap_mean (diff)
--   control          0.747 [0.681, 0.813]   --                0.692               0.801                0.801
--   pos_weight = 1   0.741 [0.700, 0.782]   -0.006 +- 0.030   0.677 (-0.015 +- 0.032)  0.805 (+0.004)  0.811 (+0.010 +- 0.016)
--   7x7-nopool stem  0.707 [0.657, 0.758]   -0.040 +- 0.031   0.663 (-0.030 +- 0.053)  0.752 (-0.050 +- 0.043)  0.782 (-0.019 +- 0.023)
-- The control reproduced best.lua's folds to the digit (0.7469).
-- Conclusion: pos_weight = 1 does not help the focal loss (nothing beyond
-- its interval).  The pool-less stem is WORSE, beyond its interval on mean
-- F1 and on inactive F1: finer feature maps do not find the thin cracks,
-- and each filter seeing a smaller share of the cell costs the inactive
-- regions (large dark areas) most.  Neither is adopted.
--   runner experiments/recipe_study3.lua --smoke     # < 1 min
local lumen = require "lumen"
local small = require "small_recipe"

return lumen.experiment {
  name = "recipe_study3",
  seed = 42,
  description = "5-fold CV: best.lua's recipe vs focal with pos_weight 1, vs the 7x7 stem without its max pool",
  stages = {
    lumen.crossval {
      folds = 5,
      seeds = { 1 },
      space = {
        recipe = lumen.variants {
          { "control", {} },
          { "pos_weight=1", { ["train.loss.pos_weight"] = 1 } },
          { "stem=7x7-nopool", { ["train.model.stem"] = "7x7-nopool" } },
        },
      },
      timeout = 10800,
      stages = small.best_stages(), -- lua/small_recipe.lua: best.lua's recipe
    },
  },
}
