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
-- 5-fold CV of best.lua's recipe, paired by fold, scored per cell type.
--   runner experiments/highpass_study.lua [--set crossval.parallel=2]
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
