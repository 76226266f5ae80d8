-- doubtful_study.lua -- do data.csv's doubtful negatives blur the crack
-- boundary?  `runner combine --wrong` found 131 cracks errors that all 13
-- studied models make; 20 of the 54 clean cells they all flag are rated
-- defective by ELPV's own labels.csv (>= 2/3), against 12% of all clean
-- cells, and 164 of data.csv's 1,313 clean cells are rated so there.  This
-- study leaves such training negatives out (ingest's doubtful; validation
-- keeps every cell, so the folds and the scored cells are the control's).
--
-- What it runs: 5-fold CV of best.lua's recipe on the same folds (thresholds
-- nested), training seed 1, paired by fold, every score also per cell type:
--   control   best.lua as it is
--   doubt0.6  training negatives rated >= 2/3 by ELPV left out (~131 a fold)
--   doubt1    only those rated 1.0 (~82 a fold)
local lumen = require "lumen"
local small = require "small_recipe"

return lumen.experiment {
  name = "doubtful_study",
  seed = 42,
  description = "5-fold CV: best.lua without the training negatives ELPV's rating calls defective",
  stages = {
    lumen.crossval {
      folds = 5,
      seeds = { 1 },
      groups = lumen.cell_types(),
      space = {
        doubtful = lumen.variants {
          { "control", {} }, -- best.lua's recipe
          { "doubt0.6", { ["ingest.doubtful.csv"] = lumen.data "labels.csv", ["ingest.doubtful.min_prob"] = 0.6 } },
          { "doubt1", { ["ingest.doubtful.csv"] = lumen.data "labels.csv", ["ingest.doubtful.min_prob"] = 1 } },
        },
      },
      timeout = 7200,
      stages = small.best_stages(), -- lua/small_recipe.lua: best.lua's recipe
    },
  },
}
