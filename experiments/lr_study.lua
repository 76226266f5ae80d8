-- lr_study.lua -- is best.lua's learning rate right for 30 epochs of focal loss?
--
-- Question: lr = 2e-3 came from hparam_sweep.lua (TPE on one split, 12
-- epochs, BCE); best.lua trains 2.5x as many epochs with the focal loss,
-- a different regime.  It was never checked there: half and double, under CV.
--
-- What it runs: 5-fold CV (lumen.crossval, folds stratified by label
-- combination, thresholds nested) of best.lua's recipe with AdamW lr 2e-3
-- (the control), 1e-3 and 4e-3; everything else the same (cosine to 1e-5
-- after 1 warm-up epoch, weight decay 0.05).
--
-- Measured (2026-12-07, ../shared/data/elpv, 1,700 cells, seed 1; 2-core
-- "Intel(R) Xeon(R) Processor" (AVX-512), 2 trials at a time with 1 thread
-- each, niced builds and tests sharing the cores part of the time; 1,943 s,
-- ~240 s per trial):
--            f1_mean [95% t]        paired diff       crack F1 (diff)           inactive F1 (diff)        ap_mean (diff)
--   2e-3     0.747 [0.681, 0.813]   --                0.692                     0.801                     0.801
--   1e-3     0.736 [0.695, 0.776]   -0.011 +- 0.045   0.681 (-0.011 +- 0.018)   0.790 (-0.011 +- 0.082)   0.809 (+0.008 +- 0.024)
--   4e-3     0.720 [0.666, 0.773]   -0.028 +- 0.024   0.680 (-0.013 +- 0.044)   0.759 (-0.042 +- 0.039)   0.796 (-0.005 +- 0.014)
-- Conclusion: 4e-3 is worse beyond its interval (mostly on inactive);
-- 1e-3 is not distinguishable from 2e-3.  2e-3 stays.
--   runner experiments/lr_study.lua --smoke     # < 1 min
local lumen = require "lumen"
local small = require "small_recipe"

return lumen.experiment {
  name = "lr_study",
  seed = 42,
  description = "5-fold CV: lr 1e-3 and 4e-3 vs best.lua's 2e-3 (30 epochs, focal)",
  stages = {
    lumen.crossval {
      folds = 5,
      seeds = { 1 },
      space = {
        lr = lumen.variants {
          { "lr2e-3", { ["train.optimizer.lr"] = 2e-3 } },
          { "lr1e-3", { ["train.optimizer.lr"] = 1e-3 } },
          { "lr4e-3", { ["train.optimizer.lr"] = 4e-3 } },
        },
      },
      timeout = 7200,
      stages = small.best_stages(), -- lua/small_recipe.lua: best.lua's recipe
    },
  },
}
