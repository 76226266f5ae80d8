-- loss_study.lua -- does the focal loss (Lin et al. 2017) raise the
-- cross-validated mean F1 of the small recipe at 30 epochs?
--
-- What it runs: 5-fold cross-validation (lumen.crossval, folds stratified
-- by label combination, thresholds tuned on the other folds' out-of-fold
-- predictions, every fold scored at its last epoch) of two recipes on the
-- same folds, paired by fold:
--   bce    the small recipe (lua/small_recipe.lua), 30 epochs, BCE with
--          pos_weight = auto (negatives/positives per label)
--   focal  the same with lumen.focal { gamma = 2 } (same pos_weight): each
--          term scaled by (1 - p_true)^2, so the easy negatives that
--          dominate the crack and inactive labels weigh less
--
-- Measured (2026-12-06, ../shared/data/elpv, 1700 cells, 5 folds, seed 1,
-- last epoch; 2-core "Intel(R) Xeon(R) Processor" (AVX-512), 2 trials at a
-- time, 1 thread each: 1486 s, ~300 s per trial):
--                 bce (control)            focal                  paired diff
--   f1_crack     0.667 [0.635, 0.698]     0.692 [0.662, 0.723]   +0.026 +- 0.050
--   f1_inactive  0.794 [0.713, 0.876]     0.801 [0.696, 0.907]   +0.007 +- 0.054
--   f1_mean      0.730 [0.695, 0.766]     0.747 [0.681, 0.813]   +0.017 +- 0.049
--   ap_crack     0.724 [0.679, 0.768]     0.734 [0.685, 0.783]   +0.011 +- 0.010
--   ap_inactive  0.874 [0.850, 0.898]     0.868 [0.848, 0.889]   -0.006 +- 0.026
--   ap_mean      0.799 [0.771, 0.827]     0.801 [0.772, 0.831]   +0.002 +- 0.014
-- (the bce row reproduces recipe_study2.lua's e30 row bit for bit.)
-- Conclusion: the focal loss ranks first on mean and crack F1, but only the
-- crack AP gain is beyond its interval (barely: +0.011 +- 0.010), the mean
-- F1's is not (fold 2 drops by 0.047, the others gain 0.010-0.053).
-- Adopted in experiments/best.lua as a weak preference -- it is the crack
-- label that needs help, and nothing is worse beyond its interval -- not as
-- a proven gain.
--   runner experiments/loss_study.lua --set crossval.parallel=2 --threads 2
--   runner experiments/loss_study.lua --smoke
local lumen = require "lumen"
local small = require "small_recipe"

return lumen.experiment {
  name = "loss_study",
  seed = 42,
  description = "5-fold CV: focal loss (gamma 2) vs BCE, small recipe at 30 epochs",
  stages = {
    lumen.crossval {
      folds = 5,
      seeds = { 1 },
      space = {
        loss = lumen.variants {
          { "bce", { ["train.loss.kind"] = "bce" } },
          { "focal", { ["train.loss.kind"] = "focal", ["train.loss.gamma"] = 2 } },
        },
      },
      timeout = 3600,
      stages = {
        lumen.ingest(small.ingest { csv = lumen.labels() }),
        lumen.normalize_stats {},
        lumen.augment { flip = true, rotate90 = true },
        lumen.train(small.train { epochs = 30, ema = 0.99 }),
        lumen.validate { thresholds = "tune" },
      },
    },
  },
}
