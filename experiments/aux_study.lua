-- aux_study.lua -- does ELPV's "defective" rating, learnt as a third label
-- next to crack and inactive, help the two?
--
-- Question: labels.csv rates every cell's defect probability (0, 1/3, 2/3,
-- 1); data.csv's 1,700 cells carry it too, and it says more than crack /
-- inactive do: 103 cells with neither are rated defective (1.0), 230 are
-- rated 1/3 or 2/3.  Pretraining on it did not help (pretrain_vs_scratch,
-- ensemble notes in best.lua); here the network learns it AT THE SAME TIME
-- (multi-task: ingest's `aux` appends "defective" = probability >= 0.5 to
-- every cell's labels; one more logit, nothing else in the model changes),
-- so the shared features must tell "defective, but no crack" from a crack.
--
-- What it runs: 5-fold CV (lumen.crossval, folds stratified by label
-- combination, thresholds nested) of best.lua's recipe with and without the
-- auxiliary label.  The folds are assigned on crack/inactive before the
-- join, so both arms have the same folds and pair fold by fold; `score`
-- makes the summaries (mean F1, mean AP, the ranking) average crack and
-- inactive only -- the defective label is trained on and reported, not
-- scored.
--
-- Measured: see the README's study table (filled in when it has run).
--   runner experiments/aux_study.lua --set crossval.parallel=2 --threads 2
--   runner experiments/aux_study.lua --smoke     # < 1 min
local lumen = require "lumen"
local small = require "small_recipe"

return lumen.experiment {
  name = "aux_study",
  seed = 42,
  description = "5-fold CV: best.lua's recipe with ELPV's defective rating as an auxiliary third label",
  stages = {
    lumen.crossval {
      folds = 5,
      seeds = { 1 },
      score = { "crack", "inactive" },
      space = {
        labels = lumen.variants {
          { "data.csv", {} },
          { "+defective", { ["ingest.aux"] = lumen.data "labels.csv" } },
        },
      },
      timeout = 7200,
      stages = small.best_stages(), -- lua/small_recipe.lua: best.lua's recipe
    },
  },
}
