-- ensemble_study.lua -- how stable is best.lua's cross-validated score
-- across training seeds, and what does averaging models buy?
--
-- Question: (1) best.lua's 0.747 comes from one training seed; the same
-- folds with other seeds give the seed-to-seed spread of that estimate and
-- a repeated-CV mean over folds x seeds.  (2) best.lua's default predictor
-- is the ensemble of its fold models; its score on new cells cannot be
-- measured here (no held-out cells), but a seed ensemble can: each fold
-- scored at the mean of its 2 models' probabilities (models that differ
-- only in their training seed), against the single models on the same
-- fold (crossval's "seed ensemble" block, paired by fold).
--
-- What it runs: 5-fold CV (lumen.crossval, folds stratified by label
-- combination and fixed by ingest split.seed = 42 for every seed,
-- thresholds nested) of best.lua's recipe with training seeds 1 and 2.
-- Seed 1's trials are best.lua's and resolution_study.lua's 160px ones
-- (the train stage is not cached: they are trained again, the same bits).
--
-- Measured (2026-12-06, ../shared/data/elpv, 1,700 cells; 2-core
-- "Intel(R) Xeon(R) Processor" (AVX-512), 2 trials at a time with 1 thread
-- each, sharing the cores with another study: 2,118 s, ~420 s per trial):
--   per fold (folds 0-4)  seed 1: 0.775 0.791 0.666 0.720 0.783  (mean 0.747)
--                         seed 2: 0.743 0.771 0.702 0.760 0.766  (mean 0.748)
--   folds x seeds (n = 10): f1_mean 0.748 [0.719, 0.776], crack 0.693,
--   inactive 0.802, ap_mean 0.799 -- the interval treats the 10 scores as
--   independent; the two seeds share their folds, so it is optimistic: the
--   5-fold interval of one seed, [0.681, 0.813], is the honest width.
--   seed ensemble (2 models per fold) - single model, paired by fold:
--     f1_mean -0.002 +- 0.015, f1_crack -0.003 +- 0.014,
--     ap_mean +0.005 +- 0.004, ap_crack +0.006 +- 0.004 (beyond 0)
-- Conclusion: seed 1's 0.747 was not a lucky draw (seed 2: 0.748); the
-- fold-to-fold spread (sd 0.04-0.05) dwarfs the seed-to-seed one.
-- Averaging models ranks the cells slightly better (AP up beyond its
-- interval) but does not move F1 at tuned thresholds: the fold ensemble as
-- the default predictor is kept for its steadier probabilities, not for a
-- measured F1 gain.
--   runner experiments/ensemble_study.lua --smoke     # < 1 min
local lumen = require "lumen"
local small = require "small_recipe"

return lumen.experiment {
  name = "ensemble_study",
  seed = 42,
  description = "5-fold CV of best.lua's recipe with 2 training seeds; the seed ensemble per fold",
  stages = {
    lumen.crossval {
      folds = 5,
      seeds = { 1, 2 },
      timeout = 3600,
      stages = small.best_stages(), -- lua/small_recipe.lua: best.lua's recipe
    },
  },
}
