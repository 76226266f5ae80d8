-- reg_sweep.lua -- how much regularization does the small-data recipe want?
--
-- Question: do dropout before the classifier, AdamW's weight decay, label
-- smoothing and a weight average of the parameters (ema) raise the
-- cross-fitted mean F1, and which combination is best?
--
-- What it runs: ingest + normalize-stats once, then a grid of
-- dropout {0, 0.3} x weight decay {0.01, 0.1} x label smoothing {0, 0.1}
-- x ema {0, 0.99} = 16 configurations x 2 seeds = 32 trials of the small
-- ResNet of aug_sweep.lua (160 px, 12 epochs, the 8 symmetries as
-- augmentation).  Each row of the table is compared with the first
-- configuration (no dropout, wd 0.01, no smoothing, no ema), paired by seed.
--
-- Duration: ~1 min per trial on a 2-core AVX-512 Xeon, so ~35 min (about
-- 2.5x that on a 2-core Zen 3).  With 2 seeds the intervals are wide
-- (t = 12.7 for one degree of freedom): add seeds with
--   runner experiments/reg_sweep.lua --set sweep.seeds={1,2,3,4}
-- and narrow the grid with --set where a factor does not matter.
--   runner experiments/reg_sweep.lua --smoke          # 2 configurations x 2 seeds, < 1 min
local lumen = require "lumen"
local small = require "small_recipe"

return lumen.experiment {
  name = "reg_sweep",
  seed = 42,
  description = "dropout x weight decay x label smoothing x ema, 2 seeds",
  stages = {
    lumen.ingest(small.ingest { csv = lumen.labels() }),
    lumen.normalize_stats {},
    lumen.sweep {
      strategy = "grid",
      seeds = { 1, 2 },
      metric = "val/f1_mean_tuned_cv", goal = "max",
      space = {
        ["train.model.dropout"] = { 0, 0.3 },
        ["train.optimizer.weight_decay"] = { 0.01, 0.1 },
        ["train.loss.label_smoothing"] = { 0, 0.1 },
        ["train.ema"] = { 0, 0.99 },
      },
      timeout = 3600,
      stages = {
        lumen.augment { flip = true, rotate90 = true },
        lumen.train(small.train {
          model = small.model { dropout = 0 },
          optimizer = lumen.adamw { lr = 2e-3 },   -- weight_decay from the space
        }),
        lumen.validate { thresholds = "tune" },
      },
    },
  },
}
