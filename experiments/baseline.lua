-- baseline.lua -- the recipe for the two-label ELPV task (data.csv:
-- crack, inactive) at 300x300, trained from scratch in ~45 minutes on the
-- 2-core CPU machine (40 epochs of ~63 s + validation).
--
-- Measured (run of 2026-11-29, seed 42, 1359 train / 341 val cells):
-- per-epoch mean F1 at the tuned thresholds 0.79-0.82 from epoch 12 on,
-- AP 0.84-0.85; the final `validate` (best epoch 39, 8-view TTA): mean F1
-- 0.821 at thresholds tuned on the split (in-sample, optimistic), 0.780
-- 2-fold cross-fitted (thresholds tuned on one half, scored on the other),
-- 0.740 at 0.5.  The seed's PyTorch recipe: ~0.71, swinging by 0.1.
--
--   runner experiments/baseline.lua                       # LUMEN_DATA=data/elpv by default
--   runner experiments/baseline.lua --smoke               # 64 images at 32x32, one epoch
--   runner experiments/baseline.lua --set train.epochs=5
--   runner experiments/baseline.lua --resume <run-id>     # continue an interrupted run
--
-- Choices (see README, "Training"):
--   * ResNet-18 layout (2 BasicBlocks per stage) at half the torchvision
--     widths: ~2.8 M parameters for ~1400 training images; the 7x7/2 stem +
--     max pool brings 300x300 down to 75x75 at once, which keeps the cost
--     per image moderate on CPUs.
--   * Augmentation: the cells are square and a crack or an inactive area is
--     a defect in any orientation, so the 8 flips/quarter turns are label
--     preserving; small rotations/shifts and contrast/brightness cover the
--     imperfect crops and exposure of the EL images.
--   * AdamW + cosine with a short warmup, pos_weight "auto" for the rare
--     positives (in data.csv 22% of the cells are cracked, 6% inactive).
--   * A weight average (ema = 0.99 per step, ~2.4 epochs) for validation
--     and checkpoints: it smooths the epoch-to-epoch swing of a small
--     validation split.  No early stopping: with the average and the cosine
--     decay the metric keeps creeping up to the last epochs.
--   * Model selection by mean average precision (threshold-free, steadier
--     on a small validation split than F1 at 0.5); the checkpoints also
--     carry per-label thresholds tuned on the validation split (pos_weight
--     pushes the probabilities up, so the tuned ones are ~0.7, not 0.5).
local lumen = require "lumen"

return lumen.experiment {
  name = "baseline",
  seed = 42,
  description = "ELPV crack/inactive, 300x300 gray, ResNet-18 layout at half width, AdamW + cosine",
  stages = {
    lumen.ingest {
      csv = lumen.data "data.csv",
      size = 300,
      channels = 1,
      split = { val = 0.2, stratify = true },
    },
    lumen.normalize_stats {},
    lumen.augment {
      flip = true, rotate90 = true,   -- the 8 symmetries of the square
      rotate = 3, translate = 0.03,   -- small misalignments of the crop
      contrast = 0.2, brightness = 0.05, gamma = 0.1,
    },
    lumen.train {
      model = lumen.resnet {
        blocks = { 2, 2, 2, 2 },
        widths = { 32, 64, 128, 256 },
        stem = "7x7", stem_width = 32,
        dropout = 0.2,
      },
      epochs = 40,
      batch = 32,
      optimizer = lumen.adamw { lr = 1e-3, weight_decay = 0.05 },
      schedule = lumen.cosine { warmup = 2, min_lr = 1e-5 },
      loss = lumen.bce { pos_weight = "auto" },
      ema = 0.99,
      metric = "val/ap_mean",
    },
    lumen.validate { thresholds = "tune", tta = true },
  },
}
