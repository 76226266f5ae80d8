--[[
small_recipe -- the small, fast recipe that lumen's study experiments share
(aug_sweep, reg_sweep, hparam_sweep, pretrain_vs_scratch): the cells at
160x160 gray, a ResNet with one BasicBlock per stage (widths 32-256, ~1.2 M
parameters), AdamW + cosine, 12 epochs -- about 4 s per epoch on a 2-core
AVX-512 Xeon, so a study of 15 trials fits in ~15 minutes.

Each function returns a parameter table (defaults, then the caller's keys
on top), to hand to the stage constructor in the experiment file itself,
so errors point at the experiment's line:

    local small = require "small_recipe"
    lumen.ingest(small.ingest { csv = lumen.labels() })
    lumen.train(small.train { ema = 0.99 })

One exception: best_stages() returns experiments/best.lua's whole stage
list (the stage constructors run here), the control of every study since
resolution_study.lua -- one definition, so a study's control is
best.lua's recipe by construction.
--]]
local lumen = require "lumen"

local M = {}

local function merge(defaults, t)
  local r = {}
  for k, v in pairs(defaults) do r[k] = v end
  for k, v in pairs(t or {}) do r[k] = v end
  return r
end

function M.ingest(t)
  return merge({ size = 160, channels = 1, split = { val = 0.2, stratify = true, seed = 42 } }, t)
end

function M.model(t)
  return lumen.resnet(merge({ blocks = { 1, 1, 1, 1 }, widths = { 32, 64, 128, 256 },
                              stem = "7x7", stem_width = 32, dropout = 0.1 }, t))
end

function M.train(t)
  return merge({
    model = M.model(),
    epochs = 12,
    batch = 32,
    optimizer = lumen.adamw { lr = 2e-3, weight_decay = 0.05 },
    schedule = lumen.cosine { warmup = 1, min_lr = 1e-5 },
    loss = lumen.bce { pos_weight = "auto" },
    metric = "val/ap_mean",
  }, t)
end

-- experiments/best.lua's recipe, the stages each of its folds runs: 160 px
-- gray, normalize-stats, the 8 dihedral symmetries, 30 epochs of the small
-- ResNet with the focal loss (gamma 2, pos_weight auto, label smoothing
-- 0.1) and a weight average (ema 0.99), thresholds tuned.  A study varies
-- it with --set-style keys in its crossval space ("train.optimizer.lr",
-- "ingest.size", ...).  Label smoothing joined on 2026-12-07
-- (reg_study.lua); the studies measured before then -- their headers say
-- "control 0.747" -- ran this recipe without it (label_smoothing = 0).
function M.best_stages()
  return {
    lumen.ingest(M.ingest { csv = lumen.labels() }),
    lumen.normalize_stats {},
    lumen.augment { flip = true, rotate90 = true },
    lumen.train(M.train { epochs = 30, ema = 0.99,
                          loss = lumen.focal { gamma = 2, pos_weight = "auto", label_smoothing = 0.1 } }),
    lumen.validate { thresholds = "tune" },
  }
end

return M
