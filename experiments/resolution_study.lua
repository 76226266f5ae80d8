-- resolution_study.lua -- does a larger input help at the recommended
-- recipe's schedule (30 epochs, focal loss)?
--
-- Question: crossval.lua found 224 px worse than 160 px (mean F1 -0.039 +-
-- 0.022) at 12 epochs; a larger input has more to learn, so the issue asks
-- again at a longer schedule.  Cracks are thin lines, and the 7x7/2 stem
-- plus max pool leaves a 160 px cell at 40x40 after the stem, a 224 px
-- cell at 56x56.
--
-- What it runs: 5-fold CV (lumen.crossval, folds stratified by label
-- combination, thresholds nested) of experiments/best.lua's recipe at 160
-- px (the control) and at 224 px; everything else the same.
--
-- Measured (2026-12-06, ../shared/data/elpv, 1,700 cells, seed 1; 2-core
-- "Intel(R) Xeon(R) Processor" (AVX-512), 2 trials at a time with 1 thread
-- each, builds sharing the cores; 1,951 s: ~280 s per 160 px trial, ~500 s
-- per 224 px trial):
--                 160 px (control)        224 px           paired diff
--   f1_mean       0.747 [0.681, 0.813]    0.732 [0.693, 0.772]   -0.015 +- 0.037
--   f1_crack      0.692                   0.678                  -0.015 +- 0.040
--   f1_inactive   0.801                   0.787                  -0.015 +- 0.056
--   ap_mean       0.801                   0.792                  -0.009 +- 0.022
-- The control reproduced best.lua's folds to the digit (0.7469).
-- Conclusion: at 30 epochs too, 224 px input does not beat 160 px (no
-- metric differs beyond its interval; every mean is lower); the recipe
-- stays at 160 px.
--   runner experiments/resolution_study.lua --smoke     # < 1 min
local lumen = require "lumen"
local small = require "small_recipe"

return lumen.experiment {
  name = "resolution_study",
  seed = 42,
  description = "5-fold CV: 224 px vs 160 px input, best.lua's recipe (30 epochs, focal)",
  stages = {
    lumen.crossval {
      folds = 5,
      seeds = { 1 },
      space = {
        size = lumen.variants {
          { "160px", { ["ingest.size"] = 160 } },
          { "224px", { ["ingest.size"] = 224 } },
        },
      },
      timeout = 7200,
      stages = small.best_stages(), -- lua/small_recipe.lua: best.lua's recipe
    },
  },
}
