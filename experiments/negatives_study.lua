-- negatives_study.lua -- do ELPV's defect-free cells outside data.csv help?
--
-- Question: labels.csv holds 624 cells that data.csv (crack, inactive)
-- does not label; 354 of them have defect probability 0 -- the experts saw
-- no defect at all, so neither a crack nor an inactive region.  Added to
-- the training folds as negatives (ingest's `negatives`), do they teach
-- the network what a crack-free cell looks like -- the error sheets show
-- poly grain read as cracks -- or only shift the class balance?
--
-- What it runs: 5-fold CV (lumen.crossval, folds stratified by label
-- combination, thresholds nested) of best.lua's recipe with and without
-- the 354 negatives in every training fold.  The negatives never enter a
-- validation fold, and data.csv's folds are the same in both arms (ingest
-- assigns them before adding the negatives), so the arms pair fold by
-- fold; pos_weight = auto follows the training split's new balance.
--
-- Measured (2026-12-07, ../shared/data/elpv, 1,700 cells + 354 negatives,
-- seed 1; 2-core "Intel(R) Xeon(R) Processor" (AVX-512), 2 trials at a
-- time with 1 thread each; 1,365 s: ~245 s per trial without, ~285 s with):
--               f1_mean [95% t]        paired diff       crack F1 (diff)           inactive F1 (diff)        ap_mean (diff)
--   data.csv    0.747 [0.681, 0.813]   --                0.692                     0.801                     0.801
--   +negatives  0.722 [0.684, 0.760]   -0.025 +- 0.041   0.692 (-0.000 +- 0.054)   0.752 (-0.049 +- 0.041)   0.797 (-0.004 +- 0.014)
-- Conclusion: the defect-free cells do not help: cracks unchanged, the
-- inactive F1 worse beyond its interval (pos_weight = auto rises with the
-- extra negatives), the AP no better.  best.lua trains on data.csv alone.
--   runner experiments/negatives_study.lua --smoke     # < 1 min
local lumen = require "lumen"
local small = require "small_recipe"

return lumen.experiment {
  name = "negatives_study",
  seed = 42,
  description = "5-fold CV: best.lua's recipe with and without labels.csv's defect-free cells as training negatives",
  stages = {
    lumen.crossval {
      folds = 5,
      seeds = { 1 },
      space = {
        data = lumen.variants {
          { "data.csv", {} },
          { "+negatives", { ["ingest.negatives.csv"] = lumen.data "labels.csv" } },
        },
      },
      timeout = 7200,
      stages = small.best_stages(), -- lua/small_recipe.lua: best.lua's recipe
    },
  },
}
