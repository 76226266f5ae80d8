-- opt_study.lua -- would SGD or smaller batches generalize better than
-- best.lua's AdamW at batch 32?
--
-- Question: every recipe so far used AdamW (lr 2e-3, weight decay 0.05)
-- at batch 32.  On small image sets SGD with Nesterov momentum, or the
-- noisier gradients of smaller batches, often generalize better; neither
-- was tried.  One setting each, from common practice, not tuned.
--
-- What it runs: 5-fold CV (lumen.crossval, folds stratified by label
-- combination, thresholds nested) of best.lua's recipe (the control), the
-- same with SGD (lr 0.05, momentum 0.9, Nesterov, weight decay 5e-4; same
-- cosine schedule and warm-up), and with batch 16 (AdamW as the control,
-- twice the steps); nothing else changes.
--
-- Measured: see the README's results paragraph (filled in when it has run).
--   runner experiments/opt_study.lua --smoke     # < 1 min
local lumen = require "lumen"
local small = require "small_recipe"

return lumen.experiment {
  name = "opt_study",
  seed = 42,
  description = "5-fold CV: SGD + Nesterov and batch 16 vs best.lua's AdamW at batch 32",
  stages = {
    lumen.crossval {
      folds = 5,
      seeds = { 1 },
      space = {
        opt = lumen.variants {
          { "adamw-b32", {} },
          { "sgd-b32", { ["train.optimizer.kind"] = "sgd", ["train.optimizer.lr"] = 0.05,
                         ["train.optimizer.momentum"] = 0.9, ["train.optimizer.nesterov"] = true,
                         ["train.optimizer.weight_decay"] = 5e-4 } },
          { "adamw-b16", { ["train.batch"] = 16 } },
        },
      },
      timeout = 7200,
      stages = small.best_stages(), -- lua/small_recipe.lua: best.lua's recipe
    },
  },
}
