-- resolution_study2.lua -- does a SMALLER input help best.lua's recipe?
--
-- Question: finer inputs or feature maps lost every time under CV -- 224
-- px input -0.015 +- 0.037 (resolution_study.lua), the 7x7/2 stem without
-- its max pool -0.040 +- 0.031, beyond its interval (recipe_study3.lua) --
-- so the other direction: at 128 or 96 px each filter sees a larger share
-- of the cell (and a step costs 0.64x or 0.36x).
--
-- What it runs: 5-fold CV (lumen.crossval, folds stratified by label
-- combination, thresholds nested) of best.lua's recipe at 160 px (the
-- control), 128 px and 96 px; everything else the same.
--
-- Measured (2026-12-06, ../shared/data/elpv, 1,700 cells, seed 1; 2-core
-- "Intel(R) Xeon(R) Processor" (AVX-512), 2 trials at a time with 1 thread
-- each, a niced test run sharing the cores; 1,288 s: ~230 s per 160 px
-- trial, ~155 s at 128 px, ~110 s at 96 px):
--            f1_mean [95% t]        paired diff       crack F1 (diff)           inactive F1 (diff)   ap_mean (diff)
--   160 px   0.747 [0.681, 0.813]   --                0.692                     0.801                0.801
--   128 px   0.717 [0.684, 0.749]   -0.031 +- 0.034   0.656 (-0.037 +- 0.044)   0.777 (-0.024)       0.801 (-0.000 +- 0.011)
--    96 px   0.704 [0.640, 0.768]   -0.043 +- 0.035   0.649 (-0.043 +- 0.032)   0.758 (-0.044)       0.799 (-0.002 +- 0.023)
-- Conclusion: smaller inputs lose F1 as well -- 96 px beyond its interval,
-- on the mean and on cracks -- while the mean AP barely moves.  With 224 px
-- (-0.015 +- 0.037) and the pool-less stem (-0.040 +- 0.031), 160 px with
-- the 7x7 stem and pool is the best of the five input/stem settings tried
-- under CV; the recipe stays there.
--   runner experiments/resolution_study2.lua --smoke     # < 1 min
local lumen = require "lumen"
local small = require "small_recipe"

return lumen.experiment {
  name = "resolution_study2",
  seed = 42,
  description = "5-fold CV: 128 px and 96 px vs 160 px input, best.lua's recipe (30 epochs, focal)",
  stages = {
    lumen.crossval {
      folds = 5,
      seeds = { 1 },
      space = {
        size = lumen.variants {
          { "160px", { ["ingest.size"] = 160 } },
          { "128px", { ["ingest.size"] = 128 } },
          { "96px", { ["ingest.size"] = 96 } },
        },
      },
      timeout = 7200,
      stages = small.best_stages(), -- lua/small_recipe.lua: best.lua's recipe
    },
  },
}
