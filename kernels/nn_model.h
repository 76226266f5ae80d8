/*
 * nn_model.h -- backend-independent description of the lumen ResNet:
 * configuration, validation, tensor table (torchvision state_dict names and
 * PyTorch layouts), graph of layers, parameter init, FLOP counts, and the
 * config as JSON (stored in checkpoint metadata).
 *
 * The model is torchvision's ResNet with BasicBlock:
 *   conv1 (stem: 7x7/2 pad 3 + maxpool 3x3/2 pad 1; 7x7/2 pad 3 and no pool,
 *   twice the feature map of torchvision's stem; or 3x3/1 pad 1 and no pool)
 *   bn1, ReLU, layer1..layerS (blocks[s] BasicBlocks of widths[s] channels; the
 *   first block of every stage but the first has stride 2; a block gets a
 *   downsample = 1x1 conv (stride s, no bias) + BN when its stride != 1 or its
 *   channel count changes), global pool (average by default; "max", or
 *   "avgmax" = the mean of the two), dropout(p), fc -> K logits.
 *
 * Storage (the "canonical view" every backend, the optimizer and the
 * checkpoint code share):
 *   params   : ONE flat float array; every trainable tensor (conv weights OIHW,
 *              BN weight/bias, fc.weight [K,C], fc.bias [K]) at tensor.offset.
 *   grads    : a second flat float array with the same offsets as params.
 *   buffers  : ONE flat float array for BN running_mean / running_var.
 *   counters : ONE int64 array for BN num_batches_tracked (offset = index).
 * nn_tensor.offset indexes the array its kind selects (in elements).
 *
 * The tensor table is in torchvision state_dict order (conv1.weight, bn1.weight,
 * bn1.bias, bn1.running_mean, bn1.running_var, bn1.num_batches_tracked,
 * layer1.0.conv1.weight, ..., layerS.B.downsample.1.*, fc.weight, fc.bias).
 *
 * Threading: an nn_model is immutable after nn_model_create; any number of
 * threads may read it.  Nothing here keeps global state.
 */
#ifndef NN_MODEL_H
#define NN_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "lm_util.h"

#define NN_MAX_STAGES 8
#define NN_MAX_BLOCKS 64      /* per stage */
#define NN_NAME_MAX 48        /* tensor / node names incl. NUL */

/* ------------------------------------------------------------ config -- */
typedef enum { NN_STEM_7X7 = 0, NN_STEM_3X3 = 1, NN_STEM_7X7_NOPOOL = 2 } nn_stem;

/* "7x7", "3x3", "7x7-nopool" */
const char *nn_stem_name(nn_stem s);

/* The head's global pool over the last feature map: the average (default,
 * torchvision's), the maximum, or the mean of the two ("avgmax"). */
typedef enum { NN_POOL_AVG = 0, NN_POOL_MAX = 1, NN_POOL_AVGMAX = 2 } nn_pool;
/* "avg", "max", "avgmax" */
const char *nn_pool_name(nn_pool p);
/* the max term's weight w in (1 - w) mean + w max: 0, 1 or 0.5 */
float nn_pool_max_weight(nn_pool p);
/* conv1's kernel size: 7 or 3 */
int nn_stem_kernel(nn_stem s);

typedef struct nn_resnet_cfg {
    int nstages;                      /* 1..8 */
    int blocks[NN_MAX_STAGES];        /* BasicBlocks per stage, 1..64 */
    int widths[NN_MAX_STAGES];        /* channels per stage, 1..8192 */
    int in_channels;                  /* image channels, 1..16 (1 or 3 in practice) */
    int stem_width;                   /* conv1 filters (torchvision: 64) */
    nn_stem stem;                     /* "7x7" (default), "3x3" or "7x7-nopool" */
    float dropout;                    /* before fc, training only, [0, 1) */
    nn_pool pool;                     /* head's global pool: "avg" (default), "max", "avgmax" */
    int num_classes;                  /* K logits, 1..4096 */
} nn_resnet_cfg;

/* The default: blocks {1,1,1,1}, widths {64,128,256,512}, in_channels 1,
 * stem_width 64, stem 7x7, dropout 0, pool avg, num_classes 2. */
void nn_resnet_cfg_default(nn_resnet_cfg *cfg);

/* Checks every field; LUMEN_EINVAL with a message naming the key, e.g.
 * "model.widths: needs as many entries as model.blocks (4), got 3". */
int nn_resnet_cfg_validate(const nn_resnet_cfg *cfg, lm_err *err);

/* Sets one key from text, as given on a command line ("blocks",
 * "model.blocks", value "{2,2,2,2}" or "[2,2,2,2]" or "2,2,2,2"; "stem" value
 * "7x7"/"3x3"/"7x7-nopool"; "pool" value "avg"/"max"/"avgmax"; numbers for the rest).  Changing "blocks" to a list of another
 * length keeps widths as they are (validate afterwards).  LUMEN_EINVAL naming
 * the key for unknown keys and malformed values. */
int nn_resnet_cfg_set(nn_resnet_cfg *cfg, const char *key, const char *value,
                      lm_err *err);

/* The config as a JSON object text:
 *   {"arch":"resnet","blocks":[1,1,1,1],"widths":[64,128,256,512],
 *    "in_channels":1,"stem":"7x7","stem_width":64,"dropout":0,"num_classes":2}
 * plus "pool":"max" / "avgmax" when the pool is not the average (so configs,
 * checkpoints and resume fingerprints from before the key read the same).
 * malloc'ed, caller frees; NULL on OOM. */
char *nn_resnet_cfg_to_json(const nn_resnet_cfg *cfg);
/* Parses that JSON back (missing keys take the defaults); validates.
 * LUMEN_EDATA for malformed JSON, unknown keys and wrong types, LUMEN_EINVAL
 * for values out of range; the message names "model.<key>". */
int nn_resnet_cfg_from_json(const char *json, nn_resnet_cfg *cfg, lm_err *err);

/* ------------------------------------------------------------ tensors -- */
typedef enum {
    NN_T_PARAM = 0,    /* trainable float, in params (and grads) */
    NN_T_BUFFER = 1,   /* float running statistic, in buffers */
    NN_T_COUNTER = 2,  /* int64 (num_batches_tracked), in counters; ndim 0 */
} nn_tensor_kind;

typedef struct nn_tensor {
    char name[NN_NAME_MAX];  /* torch state_dict name */
    nn_tensor_kind kind;
    int ndim;                /* 0 (counter), 1, 2 or 4 */
    int64_t dims[4];         /* PyTorch shape (OIHW for conv weights) */
    size_t offset;           /* element offset into the array of its kind */
    size_t numel;            /* product of dims (1 for counters) */
} nn_tensor;

/* ------------------------------------------------------------ graph -- */
typedef enum {
    NN_OP_CONV = 0,    /* no bias; weight [OC,IC,k,k] */
    NN_OP_BN,          /* batch norm; optional fused ReLU (relu = 1) */
    NN_OP_MAXPOOL,     /* k x k, stride, pad; -inf padding, first max wins */
    NN_OP_ADD,         /* in[0] + in[1]; optional ReLU after the sum */
    NN_OP_GAP,         /* global pool -> [C,1,1]: (1 - pmax) mean + pmax max,
                          first max wins (pmax 0: the average) */
    NN_OP_DROPOUT,     /* training only; inverted scaling 1/(1-p) */
    NN_OP_FC,          /* [C] -> [K]: weight [K,C], bias [K] */
} nn_op;

#define NN_INPUT (-1)  /* nn_node.in value: the network input */

typedef struct nn_node {
    nn_op op;
    char name[NN_NAME_MAX];  /* torch module name: "layer2.0.downsample.0" */
    int in[2];               /* producing node index or NN_INPUT; in[1] = -2
                                unless op == NN_OP_ADD */
    int relu;                /* ReLU applied to this node's output */
    int ic, ih, iw;          /* input shape per image (in[0]) */
    int c, h, w;             /* output shape per image */
    int k, stride, pad;      /* conv, maxpool */
    float p;                 /* dropout probability */
    float pmax;              /* gap: weight of the max term (nn_pool_max_weight) */
    /* tensor indices into nn_model.tensors, -1 when unused */
    int weight, bias;        /* conv.weight / bn.weight,bn.bias / fc.* */
    int mean, var, count;    /* bn running_mean, running_var, num_batches */
    double flops;            /* forward FLOPs per image (2 per MAC) */
} nn_node;

/* Nodes in execution order (topological); the last is the fc. */
typedef struct nn_graph {
    int n;
    nn_node *nodes;          /* owned; nn_graph_free releases */
    int in_c, in_h, in_w;    /* network input per image */
} nn_graph;

/* ------------------------------------------------------------ model -- */
typedef struct nn_model {
    nn_resnet_cfg cfg;
    int ntensors;
    nn_tensor *tensors;      /* owned */
    size_t nparams;          /* floats in params (and grads) */
    size_t nbuffers;         /* floats in buffers */
    size_t ncounters;        /* int64 in counters */
} nn_model;

/* Validates cfg and builds the tensor table.  *out is malloc'ed; release it
 * with nn_model_free.  LUMEN_EINVAL (bad cfg, message names the key),
 * LUMEN_ENOMEM. */
int nn_model_create(const nn_resnet_cfg *cfg, nn_model **out, lm_err *err);
void nn_model_free(nn_model *m);  /* NULL is a no-op */

/* Index of the tensor named `name`, or -1. */
int nn_model_find(const nn_model *m, const char *name);

/* Initializes params, buffers and counters like torchvision does, from a
 * seeded PRNG (lm_xoshiro, see rng.h): tensors in table order, elements in
 * order,
 *   conv weight : normal(0, sqrt(2 / (OC*k*k)))   (kaiming_normal_, fan_out, relu)
 *   bn weight 1, bias 0, running_mean 0, running_var 1, num_batches 0
 *   fc weight and bias: uniform(-1/sqrt(C), 1/sqrt(C))   (nn.Linear default)
 * Any of the three arrays may be NULL (skipped; the draws for params are the
 * same either way). */
void nn_model_init(const nn_model *m, uint64_t seed, float *params,
                   float *buffers, int64_t *counters);

/* Builds the layer graph for an input of in_h x in_w pixels (in_channels
 * from the config).  LUMEN_EINVAL when the input is too small for the model
 * (a feature map would vanish; the message names the layer), LUMEN_ENOMEM.
 * Release with nn_graph_free. */
int nn_model_graph(const nn_model *m, int in_h, int in_w, nn_graph *g,
                   lm_err *err);
void nn_graph_free(nn_graph *g);

/* Forward FLOPs for one image (sum over nodes; conv and fc count 2 per MAC,
 * other layers their elementwise operations).  A training step costs about
 * 3x this (forward, backward-data, backward-weights). */
double nn_graph_flops(const nn_graph *g);

/* Name of an op ("conv", "bn", ...). */
const char *nn_op_name(nn_op op);

#endif /* NN_MODEL_H */
