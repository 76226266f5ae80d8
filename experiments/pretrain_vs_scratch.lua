-- pretrain_vs_scratch.lua -- does pretraining on ELPV's `defective` label help?
--
-- Question: does a network first trained on the ELPV cells that have no
-- crack/inactive labels (labels.csv minus data.csv: 624 cells, the
-- `defective` label) and then fine-tuned on data.csv (crack, inactive) beat
-- the same network trained from scratch, beyond seed-to-seed noise?
--
-- What it runs: the pretraining once (ingest labels.csv excluding every
-- cell of data.csv -- so no cell the fine-tuning validates on is seen --,
-- normalize-stats, 15 epochs of the small ResNet of aug_sweep.lua at 160
-- px), then ingest + normalize-stats of data.csv, then a sweep of two arms
-- x 3 seeds: "scratch" and "pretrained" (init = the pretraining's best
-- checkpoint, a fresh classifier head), each 12 epochs with the 8
-- symmetries as augmentation.  The table gives the paired difference
-- pretrained - scratch over the seeds with its 95% interval.
--
-- A third arm: a converted torchvision ResNet-18 (safetensors; the README
-- shows the converter) given in $LUMEN_INIT trains the full ResNet-18
-- layout (64-512 wide, 2 blocks per stage) from it:
--   LUMEN_INIT=/path/resnet18.safetensors runner experiments/pretrain_vs_scratch.lua
-- Duration: ~1 min of pretraining and ~1 min per trial on a 2-core AVX-512
-- Xeon, ~8 min in all (about 2.5x on a 2-core Zen 3).
-- Measured (2026-12-06, ../shared/data/elpv; 431 s): pretraining on 530
-- cells (94 held out), then
--   scratch     0.795 +- 0.004 (sd)   (control; bitwise the same trials as
--                                      aug_sweep's "dihedral" row)
--   pretrained  0.777 +- 0.010        -0.018 +- 0.035 vs scratch
-- Conclusion: pretraining on the 624 cells outside data.csv does not help
-- this recipe; if anything it hurts (the interval includes 0).
--   runner experiments/pretrain_vs_scratch.lua --smoke     # < 1 min
-- On the public ELPV download (no data.csv) both parts use labels.csv's
-- `defective` label and the pretraining sees the same cells: the comparison
-- then only measures "twice the training", and the file says so on stderr.
local lumen = require "lumen"
local small = require "small_recipe"

local target = lumen.labels()
local has_data_csv = target:match("data%.csv$") ~= nil
if not has_data_csv then
  lumen.warn("pretrain_vs_scratch: no data.csv; pretraining and fine-tuning both use labels.csv (same cells)")
end

local arms = {
  { "scratch", {} },
  { "pretrained", {
      ["train.init"] = lumen.upstream("pretrain", "model/best.safetensors"),
      ["train.reset_head"] = true,
  } },
}
local external = os.getenv("LUMEN_INIT")
if external and external ~= "" then
  arms[#arms + 1] = { "torchvision", {
      ["train.init"] = external, ["train.reset_head"] = true,
      ["train.model.blocks"] = { 2, 2, 2, 2 }, ["train.model.widths"] = { 64, 128, 256, 512 },
      ["train.model.stem_width"] = 64,
  } }
end

return lumen.experiment {
  name = "pretrain_vs_scratch",
  seed = 42,
  description = "pretrain on ELPV defective (cells outside data.csv), fine-tune on crack/inactive, vs scratch",
  stages = {
    lumen.ingest(small.ingest {
      id = "pre_ingest",
      csv = lumen.data "labels.csv",
      exclude = has_data_csv and target or nil,
      split = { val = 0.15, stratify = true, seed = 42 },
    }),
    lumen.normalize_stats { id = "pre_stats" },
    lumen.augment { id = "pre_augment", flip = true, rotate90 = true },
    lumen.train(small.train { id = "pretrain", epochs = 15 }),
    lumen.ingest(small.ingest { csv = target }),
    lumen.normalize_stats {},
    lumen.sweep {
      strategy = "grid",
      seeds = { 1, 2, 3 },
      metric = "val/f1_mean_tuned_cv", goal = "max",
      space = { arm = lumen.variants(arms) },
      timeout = 3600,
      stages = {
        lumen.augment { flip = true, rotate90 = true },
        lumen.train(small.train { ema = 0.99 }),
        lumen.validate { thresholds = "tune" },
      },
    },
  },
}
