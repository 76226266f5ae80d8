/*
 * cpu_winograd.h -- Winograd F(m x m, 3 x 3) convolution for inference on
 * nChw8c activations (the cpu backend's AVX2 layout), m = 2 or 4.
 *
 * Only 3x3, stride 1, pad 1 (output size = input size), the shape of most of
 * a ResNet's FLOPs.  The layer computes
 *     y = act(conv(x, w) + bias [+ y])       act = ReLU or identity
 * with the BN-folded weights and bias of predict(), the residual sum as an
 * in-place accumulation onto y (what oneDNN's sum post-op does).
 *
 * Algorithm (Lavin & Gray 2016): the output is cut into m x m tiles; each
 * input tile (alpha x alpha, alpha = m + 2, zero outside the image) is
 * transformed, V = B^T d B; the alpha^2 transform points are independent
 * GEMMs M[p] = V[p] U[p] over the input channels (U = G g G^T, the weights
 * transformed once per weight change); the output tile is A^T M A.  Per
 * output pixel and channel pair the GEMMs do alpha^2 / m^2 multiplications
 * (4 for m = 2, 2.25 for m = 4) instead of 9.
 *
 * Work is split into blocks of `tb` tiles (all images' tiles in one
 * sequence); a thread transforms a block's input into its scratch, runs the
 * alpha^2 GEMMs (own AVX2/FMA 6x16 micro-kernel) and transforms the block's
 * output, so blocks are independent and the result is bitwise the same for
 * any thread count (static schedule; no reductions across threads).
 *
 * Numerics: F(2x2) is within a few float ulps of the direct convolution;
 * F(4x4) (points 0, +-1, +-2) loses about one more decimal digit (measured
 * in tests/unit/test_winograd.c).
 *
 * Layout: nChw8c, element (n, c, h, w) of a [N, C, H, W] map at
 * (((n * ceil(C/8) + c/8) * H + h) * W + w) * 8 + c % 8.  Channel counts
 * need not be multiples of 8: padding input channels are ignored (their
 * weights are zero), padding output channels are written as
 * act(0 [+ y]) = 0 when y's padding is 0.
 */
#ifndef CPU_WINOGRAD_H
#define CPU_WINOGRAD_H

#include <stddef.h>

#define NN_WINO_RELU 1   /* ReLU after the bias (and the sum) */
#define NN_WINO_ACCUM 2  /* y += conv + bias before the ReLU (residual sum) */

/* Floats of the transformed weights for m (2 or 4), IC, OC. */
size_t nn_wino_weights_floats(int m, int IC, int OC);
/* U (nn_wino_weights_floats floats, overwritten) from w [OC, IC, 3, 3]
 * (OIHW), computed in double.  Layout [alpha^2][ceil(OC/16)][ICp][16],
 * ICp = IC rounded up to 8; padding entries 0.
 * transposed != 0: the weights of the backward-data convolution instead,
 * w'[ic][oc][kh][kw] = w[oc][ic][2-kh][2-kw] (w is then [IC', OC', 3, 3] =
 * [OC, IC, 3, 3] of the forward layer with OC = IC', IC = OC'): pass the
 * forward weights and the backward conv's IC (= forward OC) and OC. */
void nn_wino_weights(float *U, const float *w, int m, int IC, int OC, int transposed);

/* The tile block for a layer: rows of the per-point GEMM (a multiple of 6)
 * chosen so the blocks split evenly over `threads`.  N, H, W: batch and map
 * size. */
int nn_wino_block(int m, int IC, int OC, int N, int H, int W, int threads);
/* Scratch floats PER THREAD for nn_wino_conv with block tb. */
size_t nn_wino_scratch_floats(int m, int IC, int OC, int tb);

/* y [N, OC, H, W] (nChw8c) = act(conv3x3/1/pad1(x) + bias [+ y]);
 * x [N, IC, H, W] nChw8c (must not overlap y); U from nn_wino_weights;
 * bias: ceil(OC/8)*8 floats (padding 0); flags: NN_WINO_*; scratch:
 * threads * nn_wino_scratch_floats(m, IC, OC, tb) floats, 32-byte aligned.
 * Runs an OpenMP team of at most `threads`.  No errors (callers pass valid
 * shapes: m 2 or 4, tb a positive multiple of 6). */
void nn_wino_conv(float *y, const float *x, const float *U, const float *bias, int N, int IC,
                  int H, int W, int OC, int m, int tb, int flags, float *scratch, int threads);

#endif /* CPU_WINOGRAD_H */
