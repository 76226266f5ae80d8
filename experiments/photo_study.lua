-- photo_study.lua -- photometric augmentation alone, for the poly cracks?
--
-- Question: the per-cell-type scores (crossval groups) put the recipe's
-- weakness on cracks in polycrystalline cells (F1 ~0.62 against ~0.79 on
-- mono), whose grain pattern varies in brightness and contrast from cell
-- to cell and module to module.  recipe_study.lua's "stronger
-- augmentation" mixed photometric changes with small rotations and shifts
-- (whose filled corners draw straight edges, crack-like) and did not help
-- (-0.006 +- 0.015, before the focal loss and smoothing).  Here the
-- photometric part alone, on best.lua's recipe: "mild" (contrast 0.2,
-- brightness 0.05, gamma 0.2) and "strong" (contrast 0.4, brightness 0.1,
-- gamma 0.4), each image augmented with probability 1.
--
-- What it runs: 5-fold CV (lumen.crossval, folds stratified by label
-- combination, thresholds nested) of the three, paired by fold, every
-- score also per cell type.
--
-- Measured: see the README's results paragraph (filled in once run).
--   runner experiments/photo_study.lua --set crossval.parallel=2 --threads 2
--   runner experiments/photo_study.lua --smoke     # < 1 min
local lumen = require "lumen"
local small = require "small_recipe"

return lumen.experiment {
  name = "photo_study",
  seed = 42,
  description = "5-fold CV: photometric augmentation (contrast/brightness/gamma) on best.lua, per cell type",
  stages = {
    lumen.crossval {
      folds = 5,
      seeds = { 1 },
      groups = lumen.cell_types(),
      space = {
        photo = lumen.variants {
          { "control", {} }, -- best.lua's recipe
          { "mild", { ["augment.contrast"] = 0.2, ["augment.brightness"] = 0.05, ["augment.gamma"] = 0.2 } },
          { "strong", { ["augment.contrast"] = 0.4, ["augment.brightness"] = 0.1, ["augment.gamma"] = 0.4 } },
        },
      },
      timeout = 7200,
      stages = small.best_stages(), -- lua/small_recipe.lua: best.lua's recipe
    },
  },
}
