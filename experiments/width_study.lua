-- width_study.lua -- does a wider or a narrower network help best.lua's recipe?
--
-- Question: the issue lists width among the candidates, and every input or
-- stem change so far lost (resolution_study*.lua, recipe_study3.lua).  With
-- 1,360 training cells per fold, a 1.2 M-parameter net may be too small to
-- see thin cracks or already too large for the data: try both directions.
--
-- What it runs: 5-fold CV (lumen.crossval, folds stratified by label
-- combination, thresholds nested) of best.lua's recipe with widths
-- 32-64-128-256 (the control, ~1.2 M parameters), 48-96-192-384 (x1.5,
-- ~2.7 M, ~2.25x the FLOPs) and 16-32-64-128 (x0.5, ~0.3 M, ~0.25x);
-- everything else the same (the stem width follows the first stage).
--
-- Measured (2026-12-07, ../shared/data/elpv, 1,700 cells, seed 1; 2-core
-- "Intel(R) Xeon(R) Processor" (AVX-512), 2 trials at a time with 1 thread
-- each, niced builds and tests sharing the cores part of the time; 1,973 s:
-- ~235 s per w32 trial, ~460 s per w48, ~90 s per w16; parameters
-- 1.23 M, 2.76 M, 0.31 M):
--            f1_mean [95% t]        paired diff       crack F1 (diff)           inactive F1 (diff)        ap_mean (diff)
--   w32      0.747 [0.681, 0.813]   --                0.692                     0.801                     0.801
--   w48      0.727 [0.690, 0.764]   -0.020 +- 0.033   0.677 (-0.016 +- 0.028)   0.777 (-0.024 +- 0.044)   0.802 (+0.001 +- 0.015)
--   w16      0.717 [0.676, 0.759]   -0.030 +- 0.051   0.674 (-0.018 +- 0.032)   0.761 (-0.041 +- 0.085)   0.804 (+0.003 +- 0.015)
-- Conclusion: width does not matter beyond the intervals, in either
-- direction: the mean AP is the same to 0.003 at a quarter or at 2.25x the
-- FLOPs, and both other widths have lower F1 point estimates at tuned
-- thresholds.  Capacity is not what limits this recipe; the control's
-- widths stay.  (w16 ranks the cells as well as w32 at ~40% of the time: a
-- cheaper model for screening studies, if its F1 deficit is accepted.)
--   runner experiments/width_study.lua --smoke     # < 1 min
local lumen = require "lumen"
local small = require "small_recipe"

return lumen.experiment {
  name = "width_study",
  seed = 42,
  description = "5-fold CV: widths x1.5 and x0.5 vs best.lua's recipe (30 epochs, focal)",
  stages = {
    lumen.crossval {
      folds = 5,
      seeds = { 1 },
      space = {
        width = lumen.variants {
          { "w32", { ["train.model.widths"] = { 32, 64, 128, 256 }, ["train.model.stem_width"] = 32 } },
          { "w48", { ["train.model.widths"] = { 48, 96, 192, 384 }, ["train.model.stem_width"] = 48 } },
          { "w16", { ["train.model.widths"] = { 16, 32, 64, 128 }, ["train.model.stem_width"] = 16 } },
        },
      },
      timeout = 7200,
      stages = small.best_stages(), -- lua/small_recipe.lua: best.lua's recipe
    },
  },
}
