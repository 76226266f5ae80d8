-- highpass_study2.lua -- the high-pass channel's width and gain, around
-- highpass_study.lua's sigma 1.5 (crack F1 +0.015 +- 0.011 there, beyond
-- its interval, inactive F1 -0.031 +- 0.077 inside its own): a finer blur
-- (sigma 1, thinner lines) and a stronger gain (4: faint cracks stand out
-- more, strong edges clip sooner).
--
-- 5-fold CV of best.lua's recipe, paired by fold, scored per cell type.
--   runner experiments/highpass_study2.lua [--set crossval.parallel=2]
local lumen = require "lumen"
local small = require "small_recipe"

return lumen.experiment {
  name = "highpass_study2",
  seed = 42,
  description = "5-fold CV: the high-pass channel's sigma (1) and gain (4) on best.lua, per cell type",
  stages = {
    lumen.crossval {
      folds = 5,
      seeds = { 1 },
      groups = lumen.cell_types(),
      space = {
        highpass = lumen.variants {
          { "control", {} }, -- best.lua's recipe
          { "hp1", { ["ingest.highpass.sigma"] = 1, ["ingest.highpass.gain"] = 2 } },
          { "hp1.5g4", { ["ingest.highpass.sigma"] = 1.5, ["ingest.highpass.gain"] = 4 } },
        },
      },
      timeout = 7200,
      stages = small.best_stages(), -- lua/small_recipe.lua: best.lua's recipe
    },
  },
}
