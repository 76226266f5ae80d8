-- gamma_study.lua -- how strongly should the focal loss focus on hard cells?
--
-- Question: best.lua's focal loss uses gamma = 2 (the paper's default,
-- chosen against BCE in loss_study.lua; no other gamma was measured).  The
-- per-cell-type breakdown (crossval groups) shows where the recipe fails:
-- cracks on polycrystalline cells, F1 ~0.62 against ~0.79 on mono cells,
-- in every recipe studied.  Those are the hard positives a stronger focus
-- (gamma 3) should weigh up -- or, if they are label noise, a weaker one
-- (gamma 1) should weigh down.  Against best.lua (gamma 2): gamma 1 and 3.
--
-- What it runs: 5-fold CV (lumen.crossval, folds stratified by label
-- combination, thresholds nested) of the three, paired by fold, every
-- score also per cell type.
--
-- Measured (2026-12-07, ../shared/data/elpv, 1,700 cells, seed 1; 2-core
-- "Intel(R) Xeon(R) Processor" (AVX-512), 2 trials at a time with 1 thread
-- each, tests sharing the cores; 1,819 s, ~200-250 s per trial):
--           f1_mean [95% t]        paired diff       crack F1 (diff)           inactive F1 (diff)        ap_mean (diff)
--   gamma2  0.754 [0.727, 0.780]   --                0.693                     0.814                     0.823
--   gamma1  0.750 [0.713, 0.786]   -0.004 +- 0.021   0.694 (+0.002 +- 0.016)   0.806 (-0.009 +- 0.046)   0.814 (-0.009 +- 0.022)
--   gamma3  0.744 [0.713, 0.775]   -0.010 +- 0.017   0.678 (-0.015 +- 0.022)   0.810 (-0.004 +- 0.055)   0.814 (-0.009 +- 0.013)
-- Per cell type, polycrystalline crack F1: gamma2 0.622, gamma1 0.624
-- (+0.002 +- 0.013), gamma3 0.597 (-0.025 +- 0.038).  The control
-- reproduced smooth_study's to the digit (0.7535).
-- Conclusion: neither focuses the hard polycrystalline cracks better; gamma
-- 3 loses micro F1 beyond its interval (-0.011 +- 0.004).  best.lua keeps
-- gamma 2.
--   runner experiments/gamma_study.lua --set crossval.parallel=2 --threads 2
--   runner experiments/gamma_study.lua --smoke     # < 1 min
local lumen = require "lumen"
local small = require "small_recipe"

return lumen.experiment {
  name = "gamma_study",
  seed = 42,
  description = "5-fold CV: focal loss gamma 1 and 3 against best.lua's 2, per cell type",
  stages = {
    lumen.crossval {
      folds = 5,
      seeds = { 1 },
      groups = lumen.cell_types(),
      space = {
        gamma = lumen.variants {
          { "gamma2", { ["train.loss.gamma"] = 2 } }, -- best.lua's recipe
          { "gamma1", { ["train.loss.gamma"] = 1 } },
          { "gamma3", { ["train.loss.gamma"] = 3 } },
        },
      },
      timeout = 7200,
      stages = small.best_stages(), -- lua/small_recipe.lua: best.lua's recipe
    },
  },
}
