local lumen = require "lumen"
return lumen.experiment {
  name = "types", seed = 2^53, threads = 2, description = "\0bin\255",
  stages = {
    lumen.ingest { csv = lumen.data "labels.csv", size = 8, channels = 3, split = { val = 0.5, stratify = true },
                   format = "elpv", threshold = 0.5, on_error = "skip", limit = 2 },
    lumen.normalize_stats { id = "stats" },
    lumen.augment { flip = true, rotate90 = true, rotate = 3, contrast = 0.2, brightness = 0.1, gamma = 0.1 },
    lumen.train { model = lumen.resnet { blocks = {1}, widths = {4}, stem = "3x3" }, epochs = 1, batch = 2,
                  optimizer = lumen.sgd { lr = 0.1, momentum = 0.9, nesterov = true },
                  schedule = lumen.cosine { warmup = 1 }, loss = lumen.bce { pos_weight = "auto" } },
    lumen.validate { thresholds = "tune" },
    lumen.stage("train", { id = "again", epochs = 1.5 }),
  },
}
