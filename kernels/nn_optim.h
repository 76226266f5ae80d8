/*
 * nn_optim.h -- optimizer updates and gradient norm on the canonical flat
 * float arrays (host memory), OpenMP-parallel.  Semantics: nn_optim_cfg in
 * nn_engine.h (PyTorch's SGD / Adam / AdamW, one param group).
 */
#ifndef NN_OPTIM_H
#define NN_OPTIM_H

#include <stddef.h>
#include <stdint.h>

#include "lm_util.h"
#include "nn_engine.h"

/* Checks a config: lr >= 0, momentum / dampening in [0, 1], betas in [0, 1),
 * eps > 0, weight_decay >= 0, nesterov needs momentum > 0 and dampening 0.
 * LUMEN_EINVAL naming the field ("optimizer.beta2: ..."). */
int nn_optim_validate(const nn_optim_cfg *cfg, lm_err *err);

/* One update of n parameters p from gradients g * grad_scale.  m1: SGD
 * momentum buffer / Adam exp_avg; m2: Adam exp_avg_sq (unused by SGD, may be
 * NULL then).  t is the step number of THIS update (1 for the first). */
void nn_optim_update(const nn_optim_cfg *cfg, float *p, const float *g, float *m1,
                     float *m2, size_t n, int64_t t, float grad_scale);

/* Sum of squares of g in double (NaN/inf propagate). */
double nn_sumsq(const float *g, size_t n);

#endif /* NN_OPTIM_H */
