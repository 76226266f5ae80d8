-- highpass_study4.lua -- do highpass_study.lua's and highpass_study2.lua's
-- gain-2 channels (sigma 1.5: the one crack F1 gain beyond its interval,
-- +0.015 +- 0.011; sigma 1) hold with another training seed?
--
-- 5-fold CV of best.lua's recipe on the same folds, training seed 2 (as
-- highpass_study3.lua), paired by fold, per cell type.
--   runner experiments/highpass_study4.lua [--set crossval.parallel=2]
local lumen = require "lumen"
local small = require "small_recipe"

return lumen.experiment {
  name = "highpass_study4",
  seed = 42,
  description = "5-fold CV, training seed 2: the gain-2 high-pass channel (sigma 1.5 and 1) on best.lua, per cell type",
  stages = {
    lumen.crossval {
      folds = 5,
      seeds = { 2 },
      groups = lumen.cell_types(),
      space = {
        highpass = lumen.variants {
          { "control", {} }, -- best.lua's recipe
          { "hp1.5", { ["ingest.highpass.sigma"] = 1.5, ["ingest.highpass.gain"] = 2 } },
          { "hp1", { ["ingest.highpass.sigma"] = 1, ["ingest.highpass.gain"] = 2 } },
        },
      },
      timeout = 7200,
      stages = small.best_stages(), -- lua/small_recipe.lua: best.lua's recipe
    },
  },
}
