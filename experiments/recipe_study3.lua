-- recipe_study3.lua -- two more changes to best.lua's recipe: the focal
-- loss without the positive weight, and finer feature maps for the cracks.
--
-- Questions, each against best.lua's recipe (30 epochs, focal gamma 2 with
-- pos_weight = auto, the control):
--  * pos_weight = 1: the focal loss already up-weights the hard cells, and
--    with BCE at 12 epochs pos_weight = 1 raised the crack F1 by +0.031 +-
--    0.010 (recipe_study.lua); the focal paper even weights the positives
--    down (alpha 0.25).
--  * the "7x7-nopool" stem: the 7x7/2 conv without the 3x3/2 max pool, so a
--    160 px cell enters layer1 at 80x80 instead of 40x40 (about 4x the
--    FLOPs after the stem).  The crack false negatives in validate's
--    errors.png are mostly mono cells with one thin line; 224 px input did
--    not help (resolution_study.lua), finer maps of the same input might.
--
-- What it runs: 5-fold CV (lumen.crossval, folds stratified by label
-- combination, thresholds nested) of the three recipes, paired by fold.
local lumen = require "lumen"
local small = require "small_recipe"

return lumen.experiment {
  name = "recipe_study3",
  seed = 42,
  description = "5-fold CV: best.lua's recipe vs focal with pos_weight 1, vs the 7x7 stem without its max pool",
  stages = {
    lumen.crossval {
      folds = 5,
      seeds = { 1 },
      space = {
        recipe = lumen.variants {
          { "control", {} },
          { "pos_weight=1", { ["train.loss.pos_weight"] = 1 } },
          { "stem=7x7-nopool", { ["train.model.stem"] = "7x7-nopool" } },
        },
      },
      timeout = 10800,
      stages = {
        lumen.ingest(small.ingest { csv = lumen.labels() }),
        lumen.normalize_stats {},
        lumen.augment { flip = true, rotate90 = true },
        lumen.train(small.train { epochs = 30, ema = 0.99, loss = lumen.focal { gamma = 2, pos_weight = "auto" } }),
        lumen.validate { thresholds = "tune" },
      },
    },
  },
}
