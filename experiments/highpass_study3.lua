-- highpass_study3.lua -- does highpass_study2.lua's best arm (sigma 1.5,
-- gain 4) hold with another training seed, and does a stronger gain (8)
-- help more?
--
-- 5-fold CV of best.lua's recipe on the same folds, training seed 2 (the
-- earlier studies trained with seed 1), paired by fold, per cell type.
--   runner experiments/highpass_study3.lua [--set crossval.parallel=2]
local lumen = require "lumen"
local small = require "small_recipe"

return lumen.experiment {
  name = "highpass_study3",
  seed = 42,
  description = "5-fold CV, training seed 2: the high-pass channel (sigma 1.5, gain 4 or 8) on best.lua, per cell type",
  stages = {
    lumen.crossval {
      folds = 5,
      seeds = { 2 },
      groups = lumen.cell_types(),
      space = {
        highpass = lumen.variants {
          { "control", {} }, -- best.lua's recipe
          { "hp1.5g4", { ["ingest.highpass.sigma"] = 1.5, ["ingest.highpass.gain"] = 4 } },
          { "hp1.5g8", { ["ingest.highpass.sigma"] = 1.5, ["ingest.highpass.gain"] = 8 } },
        },
      },
      timeout = 7200,
      stages = small.best_stages(), -- lua/small_recipe.lua: best.lua's recipe
    },
  },
}
