-- ensemble_study3.lua -- does a third input variant add to best.lua's
-- plain + high-pass pair?  Trains only the third member: best.lua's recipe
-- with a finer high-pass channel (sigma 1, gain 2), same folds and seed
-- as best.lua; score the three-input ensemble against best.lua's run with
--   runner combine BEST_RUN:0 BEST_RUN:1 THIS_RUN:0
-- (members matched cell by cell; the first member, best.lua's plain
-- models, is the reference of the paired differences) and the pair with
--   runner combine BEST_RUN:0 BEST_RUN:1
--
-- Measured (2026-12-07, ../shared/data/elpv, 1,700 cells, training seed 1;
-- 2-core AMD EPYC Zen 3 (AVX2), 2 trials at a time with 1 thread each;
-- 1,418 s, ~490 s a trial), against best.lua's run on the same machine:
--   hp1 alone                   mean F1 0.755 [0.739, 0.771]  (crack 0.688, inactive 0.822, mean AP 0.835)
--   best.lua's pair (plain+hp1.5) 0.744 [0.719, 0.769]  (crack 0.687, inactive 0.801, mean AP 0.836)
--   plain + hp1                 mean F1 0.754, mean AP 0.836
--   plain + hp1.5 + hp1         mean F1 0.751 [0.730, 0.773]  (crack 0.697, inactive 0.805, mean AP 0.839)
--     vs plain alone: +0.016 +- 0.049; vs best.lua's pair (paired by fold,
--     from runner combine --json): mean F1 +0.007 +- 0.010, crack F1
--     +0.010 +- 0.008 (beyond its interval), inactive F1 +0.004 +- 0.022,
--     mean AP +0.004 +- 0.009.
-- One training seed, and the high-pass arms' F1 differences have changed
-- sign from seed to seed before (highpass_study3/4): not adopted; a second
-- seed of all three inputs (~1 hour here) is the check before a third
-- member joins best.lua (1.5 times its training).
local lumen = require "lumen"
local small = require "small_recipe"

return lumen.experiment {
  name = "ensemble_study3",
  seed = 42,
  description = "5-fold CV of best.lua's recipe with a sigma-1 high-pass channel: a third ensemble member",
  stages = {
    lumen.crossval {
      folds = 5,
      seeds = { 1 },
      groups = lumen.cell_types(),
      space = {
        input = lumen.variants {
          { "hp1", { ["ingest.highpass.sigma"] = 1, ["ingest.highpass.gain"] = 2 } },
        },
      },
      timeout = 7200,
      stages = small.best_stages(), -- lua/small_recipe.lua: best.lua's recipe
    },
  },
}
