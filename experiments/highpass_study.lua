-- highpass_study.lua -- does a high-pass input channel find the cracks on
-- polycrystalline cells?
--
-- best.lua's cracks are found on monocrystalline cells (crack F1 0.785) far
-- better than on polycrystalline ones (0.622): a crack is a thin dark line,
-- and on a poly cell it crosses grains of different brightness.  ingest's
-- `highpass` appends to the gray channel a second one, 128 + gain * (x -
-- Gaussian blur of x), which removes the grains' brightness and keeps thin
-- lines; the model sees both (2 input channels), and the checkpoints record
-- the filter so `runner predict` applies it too.  Two blur widths, in
-- pixels at the 160 px input: sigma 1.5 (lines of 1-3 px) and sigma 4.
--
-- What it runs: 5-fold CV (lumen.crossval, folds stratified by label
-- combination, thresholds nested) of the three, paired by fold, every
-- score also per cell type.
--
-- Measured (2026-12-07, ../shared/data/elpv, 1,700 cells, seed 1; 2-core
-- "Intel(R) Xeon(R) Processor" (AVX-512), 2 trials at a time with 1 thread
-- each; 1,657 s, ~210 s per trial -- the filter costs nothing measurable):
--           f1_mean [95% t]        paired diff       crack F1 (diff)           inactive F1 (diff)        ap_mean (diff)
--   control 0.754 [0.727, 0.780]   --                0.693                     0.814                     0.823
--   hp1.5   0.746 [0.715, 0.776]   -0.008 +- 0.038   0.707 (+0.015 +- 0.011)   0.784 (-0.031 +- 0.077)   0.833 (+0.010 +- 0.032)
--   hp4     0.742 [0.718, 0.766]   -0.012 +- 0.038   0.684 (-0.008 +- 0.017)   0.799 (-0.016 +- 0.067)   0.825 (+0.002 +- 0.027)
-- Per cell type, crack F1: hp1.5 mono 0.796 (+0.011 +- 0.032), poly 0.644
-- (+0.022 +- 0.021); crack AP +0.030 +- 0.037 (mono +0.074 +- 0.090, poly
-- -0.002 +- 0.017); inactive F1 on poly cells 0.740 (-0.101 +- 0.120).
-- hp4: poly crack F1 -0.017 +- 0.017.  The control reproduced best.lua's
-- 0.7535 to the digit.
-- Conclusion: the fine high-pass channel (sigma 1.5) is the first change
-- to raise the crack F1 beyond its interval (+0.015 +- 0.011, poly cracks
-- +0.022 +- 0.021), but the inactive F1 falls (inside its wide interval)
-- and the mean F1 with it: not adopted on its own; highpass_study2.lua
-- tries its width and gain, highpass_study3.lua and highpass_study4.lua a
-- second training seed (the crack AP gain holds; this arm's crack F1 gain
-- does not, -0.014 +- 0.037; not adopted).  A
-- coarse one (sigma 4) does nothing useful.
--   runner experiments/highpass_study.lua --set crossval.parallel=2 --threads 2
--   runner experiments/highpass_study.lua --smoke     # < 1 min
local lumen = require "lumen"
local small = require "small_recipe"

return lumen.experiment {
  name = "highpass_study",
  seed = 42,
  description = "5-fold CV: a high-pass input channel (ingest highpass) on best.lua, per cell type",
  stages = {
    lumen.crossval {
      folds = 5,
      seeds = { 1 },
      groups = lumen.cell_types(),
      space = {
        highpass = lumen.variants {
          { "control", {} }, -- best.lua's recipe
          { "hp1.5", { ["ingest.highpass.sigma"] = 1.5, ["ingest.highpass.gain"] = 2 } },
          { "hp4", { ["ingest.highpass.sigma"] = 4, ["ingest.highpass.gain"] = 2 } },
        },
      },
      timeout = 7200,
      stages = small.best_stages(), -- lua/small_recipe.lua: best.lua's recipe
    },
  },
}
