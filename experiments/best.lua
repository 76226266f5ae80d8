-- best.lua -- the recommended recipe for the two-label ELPV task (crack,
-- inactive) and its default predictor: the ensemble of its 10 fold models
-- (two recipes x 5 folds: the small recipe on the plain pixels and on the
-- pixels with a high-pass channel), adopted 2026-12-07 (see below).
--
-- What it runs: 5-fold cross-validation (lumen.crossval: folds stratified by
-- label combination, each fold scored at its last epoch with thresholds
-- tuned on the other folds' out-of-fold predictions) of the small recipe
-- (lua/small_recipe.lua: 160x160 gray, ResNet with one BasicBlock per stage,
-- widths 32-256, ~1.2 M parameters; AdamW + cosine; pos_weight = auto; the
-- 8 dihedral symmetries; a weight average, ema 0.99) trained for 30 epochs
-- with the focal loss (gamma 2) and label smoothing 0.1, once on the gray
-- pixels and once with a high-pass channel added (ingest highpass, sigma
-- 1.5, gain 2; pixfilter.h).  It writes <run>/ensemble.json (crossval
-- ensemble = "all"): the 10 fold models with thresholds tuned on all 1,700
-- out-of-fold predictions averaged over the two recipes; each model sees
-- the images with its own input filter.
-- Predict with it:
--   runner predict <run>/ensemble.json --csv cells.csv [--root DIR]
--   runner eval <run>/ensemble.json --csv labelled.csv
--
-- Why this recipe (5-fold CV, paired by fold; each file's header has its
-- table): 30 epochs instead of 12 raise the mean AP by +0.029 +- 0.027
-- (recipe_study.lua; mean F1 +0.011 +- 0.016), the focal loss on top raises
-- the crack AP by +0.011 +- 0.010 (loss_study.lua; mean F1 +0.017 +- 0.049,
-- crack F1 +0.026 +- 0.050): each beyond its interval on one threshold-free
-- metric, neither on the mean F1 itself, and no metric worse beyond its
-- interval -- a weak preference, stated as such.  pos_weight = 1 (with BCE
-- and with focal), stronger augmentation, 224 px input (at 12 and 30
-- epochs), 128 px, 8-view TTA, mixup, 60 epochs and {2,2,2,2} blocks did
-- not help beyond their intervals; 96 px and the pool-less 7x7 stem were
-- worse beyond theirs (crossval.lua, recipe_study.lua, recipe_study2.lua,
-- recipe_study3.lua, resolution_study.lua, resolution_study2.lua).  A
-- second training seed scores 0.748 on the same folds, and averaging the
-- two seeds' models raises the mean AP by +0.005 +- 0.004 but not the F1
-- (ensemble_study.lua).  Widths x1.5 and x0.5 (width_study.lua) and lr
-- 1e-3 (lr_study.lua) did not help beyond their intervals; lr 4e-3 and
-- ELPV's 354 defect-free cells outside data.csv as extra training
-- negatives (negatives_study.lua, inactive F1 -0.049 +- 0.041) were worse
-- beyond theirs; so were longer weight averages (ema_study.lua: ema 0.995
-- -0.006 +- 0.005, 0.998 -0.027 +- 0.037) and SGD with Nesterov momentum
-- (opt_study.lua, -0.054 +- 0.011); batch 16 did not help (-0.031 +- 0.047),
-- nor did a max or avg+max pooled head (pool_study.lua, -0.026 / -0.028)
-- or ELPV's defective rating as an auxiliary third label (aux_study.lua,
-- -0.009 +- 0.066), nor stronger dropout and weight decay (reg_study.lua,
-- -0.017 +- 0.040).  Label smoothing 0.1 (reg_study.lua) raises the mean AP
-- by +0.022 +- 0.017 (inactive AP +0.033 +- 0.013), mean F1 +0.007 +- 0.058,
-- nothing worse: it joined the recipe on 2026-12-07, on the same weak rule
-- as 30 epochs and the focal loss.  Lighter dropout / weight decay, 45
-- epochs (light_study.lua), focal gamma 1 or 3 (gamma_study.lua) and
-- photometric augmentation (photo_study.lua) did not help.  A high-pass
-- input channel (ingest highpass; highpass_study.lua, _study2, _study3)
-- raises the crack AP by 0.03 to 0.05 in five of five arms, but lowers the
-- inactive F1 (gain 4 with training seed 2: -0.061 +- 0.059), and its
-- mean F1 gain with seed 1 (+0.017 +- 0.057) did not hold with seed 2
-- (-0.028 +- 0.037): not adopted.  Averaging this recipe's fold models
-- with a sigma-1.5 high-pass model per fold (runner combine, no training)
-- gives mean F1 +0.013 +- 0.047 / +0.011 +- 0.032 (seeds 1 / 2), mean AP
-- +0.020 +- 0.018; a second seed of this recipe gives -0.011 +- 0.016 and
-- all 13 studied models +0.008 +- 0.024: not adopted (twice the training
-- for a gain inside its interval); with a third seed (ensemble_study2.lua)
-- the pair gains +0.014 +- 0.016 over 3 seeds (crack F1 +0.016 +- 0.014,
-- mean AP +0.018 +- 0.009): the first lead for a mixed-input fold
-- ensemble -- now this file (2026-12-07: crossval ensemble = "all" and
-- ensembles whose members see differently filtered pixels; measured below).
-- This recipe's own score with training seeds 2 and 3: 0.753
-- and 0.726 (the 0.754 below is seed 1's).  Holding out of training the clean
-- cells ELPV's rating calls defective (doubtful_study.lua) is worse: mean F1
-- -0.040 +- 0.041 (>= 2/3), -0.018 +- 0.020 (1.0), crack F1 lower beyond
-- its interval in both.
--
-- Measured, the shipped predictor (2026-12-07, ../shared/data/elpv, 1,700
-- cells, training seed 1, this file as it is; 2-core AMD EPYC Zen 3, AVX2,
-- 2 trials at a time with 1 thread each): every fold scored at the mean of
-- its two models' probabilities, thresholds nested as for one model
-- ("ensemble of all 2 configurations" in the table):
--   f1_mean     0.744 [0.719, 0.769]   (mean over folds [95% t interval])
--   f1_crack    0.687 [0.652, 0.723]
--   f1_inactive 0.801 [0.761, 0.841]
--   ap_mean     0.836 [0.820, 0.851]   (crack 0.765, inactive 0.906)
-- against the plain recipe alone on the same folds (configuration 0,
-- 0.735 [0.682, 0.788]): mean F1 +0.009 +- 0.053, mean AP +0.018 +- 0.015
-- and crack AP +0.025 +- 0.016 beyond their intervals, crack F1 -0.005 +-
-- 0.026, inactive F1 +0.024 +- 0.098.  The high-pass model alone: 0.750
-- [0.733, 0.766].  Why it was adopted: over four trainings of the pair
-- (training seeds 1, 2, 3 on the AVX-512 Xeon via runner combine, seed 1
-- here) the ensemble's mean F1 gain was positive every time (+0.013,
-- +0.011, +0.017, +0.009), each inside its own interval, and its mean AP
-- gain beyond its interval in three of the four, no metric worse beyond
-- its interval -- the weak rule under which 30 epochs, the focal loss and
-- label smoothing joined; it costs twice the training.  Note the machine:
-- the plain recipe with the same seed scored 0.754 [0.727, 0.780] on the
-- AVX-512 Xeon (reg_study.lua's smooth0.1 arm, reproduced to the digit
-- there by smooth_study.lua) and 0.735 here -- oneDNN's AVX2 and AVX-512
-- kernels round differently and training amplifies it, so the figure moves
-- with the machine about as much as with the seed (0.726-0.754 over seeds
-- 1-3 on the Xeon).  Per cell type (the single plain models, groups):
-- the polycrystalline cracks are where the distance to 0.85 is, in every
-- recipe studied (crack F1 ~0.79 mono, ~0.62 poly on the Xeon).
-- A third input (high-pass sigma 1; ensemble_study3.lua, _study4) gained
-- crack F1 +0.010 +- 0.008 over the pair with seed 1 and nothing with seed
-- 2 (mean F1 -0.002 +- 0.015): not added.
-- The same file on an AVX-512 machine (2026-12-08, 2-core AMD EPYC Zen 4,
-- 1,605 s; seed 1): the ensemble 0.766 [0.745, 0.788] (crack 0.698 [0.662,
-- 0.733], inactive 0.835 [0.807, 0.864]; mean AP 0.842 [0.823, 0.862]), the
-- plain models 0.754 [0.727, 0.780], the high-pass ones 0.746 [0.715,
-- 0.776]; ensemble - plain +0.013 +- 0.047 mean F1, mean AP +0.020 +-
-- 0.018 -- to the digit the Xeon's figures: AVX-512 machines agree, the
-- AVX2 Zen 3 above differs.  Predicting the 1,700 cells with its 10 models:
-- 25 s there.
-- Below the issue's 0.85 target.  These are the fold models' scores under
-- cross-validation; the ensemble's on new cells is not measured here.
-- Duration: 2,490 s here for the 10 fold trials (~490 s each, 2 at a
-- time; the machine was also building and testing lumen meanwhile; ~200 s
-- per trial on the AVX-512 Xeon).  Predicting 1,700 cells with the
-- 10-model ensemble: 33 s on the 2 cores.
--   runner experiments/best.lua                (make run EXPERIMENT=experiments/best.lua)
--   runner experiments/best.lua --smoke
local lumen = require "lumen"
local small = require "small_recipe"

return lumen.experiment {
  name = "best",
  seed = 42,
  description = "the recommended recipe, 5-fold CV of its two input variants; writes their 10-model fold ensemble (ensemble.json)",
  stages = {
    lumen.crossval {
      folds = 5,
      seeds = { 1 },
      parallel = 2, -- 2 fold trials at a time, --threads split between them
      timeout = 3600,
      groups = lumen.cell_types(), -- every score also per cell type (mono / poly), when labels.csv is there
      -- two models per fold, the recipe on the plain pixels and on pixels
      -- with a high-pass channel (ingest highpass, sigma 1.5, gain 2)
      ensemble = "all", -- <run>/ensemble.json: both recipes' fold models (10), scored as one predictor
      space = {
        input = lumen.variants {
          { "plain", {} },
          { "highpass", { ["ingest.highpass.sigma"] = 1.5, ["ingest.highpass.gain"] = 2 } },
        },
      },
      -- the recipe (lua/small_recipe.lua, best_stages: one definition that
      -- every study's control shares): ingest at 160 px, normalize-stats,
      -- augment with the 8 dihedral symmetries, train 30 epochs with the
      -- focal loss and ema 0.99, validate with tuned thresholds
      stages = small.best_stages(),
    },
  },
}
