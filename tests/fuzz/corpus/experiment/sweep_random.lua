local lumen = require "lumen"
return lumen.experiment {
  name = "sw", seed = 3,
  stages = {
    lumen.ingest { csv = lumen.labels(), size = 16 },
    lumen.normalize_stats {},
    lumen.sweep {
      strategy = "random", trials = 3, metric = "val/f1_mean", goal = "max", seeds = { 1, 2 },
      prune = "asha",
      space = { ["train.optimizer.lr"] = lumen.loguniform and lumen.loguniform(1e-4, 1e-1) or { 0.1, 0.01 },
                ["augment.flip"] = { false, true } },
      stages = { lumen.augment {}, lumen.train { epochs = 2 }, lumen.validate {} },
    },
  },
}
