-- pool_study.lua -- does a max-pooled head find the cracks that the global
-- average dilutes?
--
-- Question: best.lua's ResNet ends in torchvision's global average pool:
-- at 160 px the last feature map is 5x5, and a thin crack that lights up
-- one or two of those 25 positions is averaged with 23 quiet ones before
-- the classifier sees it.  A global max pool keeps the strongest response
-- wherever it is (the usual head for small, local defects); "avgmax", the
-- mean of the two, keeps the average's smoother gradient as well.  Every
-- other study so far changed the input, the body or the training; this one
-- changes only the head (no parameters added).
--
-- What it runs: 5-fold CV (lumen.crossval, folds stratified by label
-- combination, thresholds nested) of best.lua's recipe with
-- train.model.pool = "avg" (the control), "max" and "avgmax"; the same
-- folds in every arm, so differences pair fold by fold.
--
-- Measured: see the README's study table (filled in when it has run).
--   runner experiments/pool_study.lua --set crossval.parallel=2 --threads 2
--   runner experiments/pool_study.lua --smoke     # < 1 min
local lumen = require "lumen"
local small = require "small_recipe"

return lumen.experiment {
  name = "pool_study",
  seed = 42,
  description = "5-fold CV: best.lua's recipe with a global max and an avg+max pooled head vs the average",
  stages = {
    lumen.crossval {
      folds = 5,
      seeds = { 1 },
      space = {
        pool = lumen.variants {
          { "avg", { ["train.model.pool"] = "avg" } },
          { "max", { ["train.model.pool"] = "max" } },
          { "avgmax", { ["train.model.pool"] = "avgmax" } },
        },
      },
      timeout = 7200,
      stages = small.best_stages(), -- lua/small_recipe.lua: best.lua's recipe
    },
  },
}
