/*
 * cmd_bench.h -- `runner bench`: times the training engine on synthetic data.
 *
 *   runner bench [--set model.KEY=VALUE]... [--size 300] [--channels 1]
 *                [--batch 32] [--steps 10] [--warmup 2] [--threads N]
 *                [--backend cpu] [--layout auto|blocked|nhwc]
 *                [--infer-conv auto|direct|wino2|wino4]
 *                [--train-conv direct|auto|wino2|wino4] [--no-layers] [--no-train]
 *
 * Prints per-layer forward/backward milliseconds of training (like `caffe
 * time`) and per-layer milliseconds of predict (BN folded and fused; BN, the
 * residual add and dropout show no rows there: they run inside the convs),
 * then one JSON line:
 *   {"train_img_s":..,"infer_img_s":..,"train_gflops":..,"infer_gflops":..,
 *    "train_ms_step":..,"optim_ms":..,"infer_ms_batch":..,"gflop_per_train_img":..,...}
 * --no-train times predict only (the train_* fields are then 0).
 * Timings are medians over --steps (train_step + optim_step with Adam; predict
 * on the same batch).  Exit status 0, or 2 for bad arguments / 1 for engine
 * failures (message on stderr).
 */
#ifndef RN_CMD_BENCH_H
#define RN_CMD_BENCH_H

/* argv[0] is the command name ("bench"); options follow.  Prints to stdout. */
int rn_cmd_bench(int argc, char **argv);

#endif /* RN_CMD_BENCH_H */
