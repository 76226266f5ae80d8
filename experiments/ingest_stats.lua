-- ingest_stats.lua -- the data half of the pipeline, no training: decode
-- the ELPV solar-cell images listed in labels.csv into the LMDB dataset
-- (300x300, one channel, 20% stratified validation split) and compute the
-- per-channel normalization statistics of the training split.  A quick
-- check of a data folder (the README's quickstart); training runs in
-- baseline.lua and aug_sweep.lua (`make run`'s default).
--
--   runner experiments/ingest_stats.lua                    # LUMEN_DATA=data/elpv by default
--   runner experiments/ingest_stats.lua --smoke            # a tiny slice, for a quick check
--   runner experiments/ingest_stats.lua --set ingest.size=128
local lumen = require "lumen"

return lumen.experiment {
  name = "ingest_stats",
  seed = 42,
  description = "ELPV images -> LMDB dataset + normalization statistics",
  stages = {
    lumen.ingest {
      csv = lumen.data "labels.csv",
      size = 300,
      channels = 1,
      split = { val = 0.2 },
    },
    lumen.normalize_stats {},
  },
}
