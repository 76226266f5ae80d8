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
-- Measured: see the README's results paragraph (filled in once run).
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
