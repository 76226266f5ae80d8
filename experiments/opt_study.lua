-- opt_study.lua -- would SGD or smaller batches generalize better than
-- best.lua's AdamW at batch 32?
--
-- Question: every recipe so far used AdamW (lr 2e-3, weight decay 0.05)
-- at batch 32.  On small image sets SGD with Nesterov momentum, or the
-- noisier gradients of smaller batches, often generalize better; neither
-- was tried.  One setting each, from common practice, not tuned.
--
-- What it runs: 5-fold CV (lumen.crossval, folds stratified by label
-- combination, thresholds nested) of best.lua's recipe (the control), the
-- same with SGD (lr 0.05, momentum 0.9, Nesterov, weight decay 5e-4; same
-- cosine schedule and warm-up), and with batch 16 (AdamW as the control,
-- twice the steps); nothing else changes.
--
-- Measured (2026-12-07, ../shared/data/elpv, 1,700 cells, seed 1; 2-core
-- "Intel(R) Xeon(R) Processor" (AVX-512), 2 trials at a time with 1 thread
-- each, a few tests sharing the cores; 1,961 s, 225-270 s per trial):
--                f1_mean [95% t]        paired diff       crack F1 (diff)           inactive F1 (diff)        ap_mean (diff)
--   AdamW b32    0.747 [0.681, 0.813]   --                0.692                     0.801                     0.801
--   SGD b32      0.694 [0.628, 0.759]   -0.054 +- 0.011   0.650 (-0.043 +- 0.032)   0.737 (-0.064 +- 0.029)   0.748 (-0.053 +- 0.071)
--   AdamW b16    0.716 [0.677, 0.755]   -0.031 +- 0.047   0.664 (-0.028 +- 0.041)   0.768 (-0.034 +- 0.059)   0.801 (-0.000 +- 0.006)
-- Conclusion: SGD (this setting, untuned) is worse beyond its interval on
-- both labels; batch 16 ranks cells as well (mean AP the same) but its F1
-- is lower, not beyond its interval.  AdamW at batch 32 stays.
--   runner experiments/opt_study.lua --smoke     # < 1 min
local lumen = require "lumen"
local small = require "small_recipe"

return lumen.experiment {
  name = "opt_study",
  seed = 42,
  description = "5-fold CV: SGD + Nesterov and batch 16 vs best.lua's AdamW at batch 32",
  stages = {
    lumen.crossval {
      folds = 5,
      seeds = { 1 },
      space = {
        opt = lumen.variants {
          { "adamw-b32", {} },
          { "sgd-b32", { ["train.optimizer.kind"] = "sgd", ["train.optimizer.lr"] = 0.05,
                         ["train.optimizer.momentum"] = 0.9, ["train.optimizer.nesterov"] = true,
                         ["train.optimizer.weight_decay"] = 5e-4 } },
          { "adamw-b16", { ["train.batch"] = 16 } },
        },
      },
      timeout = 7200,
      stages = small.best_stages(), -- lua/small_recipe.lua: best.lua's recipe
    },
  },
}
