-- reg_study.lua -- does more regularisation help best.lua's recipe?
--
-- Question: reg_sweep.lua ranked dropout x weight decay x label smoothing
-- x weight average on one validation split, at 12 epochs of BCE; best.lua
-- trains 30 epochs with the focal loss, and the labels are noisy (ELPV's
-- raters disagree: 230 of data.csv's defect-free cells are rated 1/3 or
-- 2/3 defective).  Two candidates under cross-validation:
--   smooth0.1   label smoothing 0.1: targets 0.05 / 0.95, so a doubtful
--               cell costs less when the network disagrees with its label
--   strong-reg  dropout 0.3 before the classifier (best.lua: 0.1) and
--               AdamW weight decay 0.2 (best.lua: 0.05)
--
-- What it runs: 5-fold CV (lumen.crossval, folds stratified by label
-- combination, thresholds nested) of best.lua's recipe and the two
-- variants, paired by fold.
--
-- Measured: see the README's study table (filled in when it has run).
--   runner experiments/reg_study.lua --set crossval.parallel=2 --threads 2
--   runner experiments/reg_study.lua --smoke     # < 1 min
local lumen = require "lumen"
local small = require "small_recipe"

return lumen.experiment {
  name = "reg_study",
  seed = 42,
  description = "5-fold CV: best.lua's recipe with label smoothing 0.1, and with dropout 0.3 + weight decay 0.2",
  stages = {
    lumen.crossval {
      folds = 5,
      seeds = { 1 },
      space = {
        reg = lumen.variants {
          { "control", {} },
          { "smooth0.1", { ["train.loss.label_smoothing"] = 0.1 } },
          { "strong-reg", { ["train.model.dropout"] = 0.3, ["train.optimizer.weight_decay"] = 0.2 } },
        },
      },
      timeout = 7200,
      stages = small.best_stages(), -- lua/small_recipe.lua: best.lua's recipe
    },
  },
}
