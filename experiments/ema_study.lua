-- ema_study.lua -- does a longer weight average help best.lua's recipe?
--
-- Question: best.lua averages the weights with ema = 0.99 (a window of
-- ~100 steps, ~2.3 of its 30 epochs).  A longer average, SWA-like over the
-- last third of the cosine schedule, is a common cheap gain on small data.
-- It could not be studied before: the warm-up min(ema, (1+n)/(10+n))
-- capped the decay at ~0.993 over best.lua's 1,290 steps, so ema = 0.998
-- acted like 0.993.  train.ema_warmup = 2 lets the decay reach 0.995 after
-- ~200 steps and 0.998 after ~500.
--
-- What it runs: 5-fold CV (lumen.crossval, folds stratified by label
-- combination, thresholds nested) of best.lua's recipe (the control) and
-- the same with ema 0.995 and 0.998 (warm-up W = 2); nothing else changes.
--
-- Measured: see the README's results table (filled in when it has run).
--   runner experiments/ema_study.lua --smoke     # < 1 min
local lumen = require "lumen"
local small = require "small_recipe"

return lumen.experiment {
  name = "ema_study",
  seed = 42,
  description = "5-fold CV: weight averages of ~200 and ~500 steps vs best.lua's ema 0.99",
  stages = {
    lumen.crossval {
      folds = 5,
      seeds = { 1 },
      space = {
        ema = lumen.variants {
          { "ema0.99", { ["train.ema"] = 0.99 } },
          { "ema0.995w2", { ["train.ema"] = 0.995, ["train.ema_warmup"] = 2 } },
          { "ema0.998w2", { ["train.ema"] = 0.998, ["train.ema_warmup"] = 2 } },
        },
      },
      timeout = 7200,
      stages = small.best_stages(), -- lua/small_recipe.lua: best.lua's recipe
    },
  },
}
