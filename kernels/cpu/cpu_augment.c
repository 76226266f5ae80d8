/* cpu_augment.c -- see cpu_augment.h. */
#include "cpu/cpu_augment.h"

#include <math.h>
#include <string.h>

#include <lumen/plugin.h>

#ifndef M_PI
#define M_PI 3.14159265358979323846
#endif

void nn_aug_params_identity(nn_aug_params *p) {
    memset(p, 0, sizeof *p);
    p->gamma = 1.0;
    p->contrast = 1.0;
    p->fill = NN_AUG_FILL_MEAN;
}

int nn_aug_params_check(const nn_aug_params *p) {
    if (!p || p->dihedral < 0 || p->dihedral >= NN_AUG_DIHEDRAL_N)
        return LUMEN_EINVAL;
    if (!isfinite(p->angle_deg) || !isfinite(p->dx) || !isfinite(p->dy) ||
        !isfinite(p->gamma) || !isfinite(p->contrast) ||
        !isfinite(p->brightness) || !isfinite(p->fill_value))
        return LUMEN_EINVAL;
    if (p->gamma <= 0 || p->contrast < 0)
        return LUMEN_EINVAL;
    if (p->fill != NN_AUG_FILL_MEAN && p->fill != NN_AUG_FILL_BORDER &&
        p->fill != NN_AUG_FILL_CONSTANT)
        return LUMEN_EINVAL;
    if (p->fill_value < 0 || p->fill_value > 1)
        return LUMEN_EINVAL;
    return LUMEN_OK;
}

/* ------------------------------------------------------------------------ */
/* The dihedral group: element k = R^(k&3) o H^(k>>2)                       */
/* ------------------------------------------------------------------------ */

static int mod4(int r) { return ((r % 4) + 4) % 4; }

int nn_aug_dihedral_compose(int a, int b) {
    int fa = (a >> 2) & 1, ra = a & 3, fb = (b >> 2) & 1, rb = b & 3;
    /* R^ra H^fa R^rb H^fb; H R^rb = R^-rb H moves the flip to the right. */
    int r = fa ? ra - rb : ra + rb;
    return ((fa ^ fb) << 2) | mod4(r);
}

int nn_aug_dihedral_inverse(int k) {
    if (k & 4)
        return k; /* R^r H is a reflection: its own inverse */
    return mod4(-(k & 3));
}

int nn_aug_dihedral_of(int hflip, int vflip, int rot90) {
    int k = hflip ? 4 : 0;
    if (vflip)
        k = nn_aug_dihedral_compose(6, k); /* vflip = R^2 H */
    return nn_aug_dihedral_compose(mod4(rot90), k);
}

int nn_aug_dihedral_transposes(int k) { return k & 1; }

void nn_aug_out_shape(int h, int w, const nn_aug_params *p, int *oh, int *ow) {
    if (nn_aug_dihedral_transposes(p->dihedral)) {
        *oh = w;
        *ow = h;
    } else {
        *oh = h;
        *ow = w;
    }
}

/* Forward integer map of element k for an h x w input:
 *   x' = a x + b y + tx,  y' = c x + d y + ty   (output coordinates). */
typedef struct imap {
    int a, b, c, d, tx, ty;
} imap;

static imap dihedral_forward(int k, int h, int w) {
    imap t = {1, 0, 0, 1, 0, 0};
    int cw = w, ch = h;
    if (k & 4) /* H: x' = (cw-1) - x */
        t = (imap){-t.a, -t.b, t.c, t.d, (cw - 1) - t.tx, t.ty};
    for (int i = 0; i < (k & 3); i++) {
        /* R (counter-clockwise): x' = y, y' = (cw-1) - x; dims swap */
        imap n = {t.c, t.d, -t.a, -t.b, t.ty, (cw - 1) - t.tx};
        t = n;
        int s = cw;
        cw = ch;
        ch = s;
    }
    return t;
}

/* ------------------------------------------------------------------------ */
/* Fused kernel                                                             */
/* ------------------------------------------------------------------------ */

static inline float clamp01(float v) {
    return v < 0.0f ? 0.0f : (v > 1.0f ? 1.0f : v);
}

/* Tone lookup: lut[v] = (v/255)^gamma, exactly the expression the reference
 * evaluates per pixel. */
static void tone_lut(double gamma, float lut[256]) {
    float g = (float)gamma;
    for (int v = 0; v < 256; v++) {
        float t = (float)v / 255.0f;
        lut[v] = gamma == 1.0 ? t : powf(t, g);
    }
}

/* Photometric tail shared by both passes (steps 4-5; step 3 before it). */
typedef struct photo {
    float bright, mean, std;
} photo;

static inline float finish(float t, const photo *ph) {
    t = clamp01(t + ph->bright);
    return (t - ph->mean) / ph->std;
}

static int validate(const void *src, int c, int h, int w, const float *mean,
                    const float *std, const void *dst) {
    if (!src || !dst || !mean || !std || c <= 0 || h <= 0 || w <= 0)
        return LUMEN_EINVAL;
    if ((size_t)c * (size_t)h * (size_t)w > (size_t)1 << 40)
        return LUMEN_EINVAL;
    for (int i = 0; i < c; i++)
        if (!(std[i] > 0) || !isfinite(std[i]) || !isfinite(mean[i]))
            return LUMEN_EINVAL;
    return LUMEN_OK;
}

/* Bilinear sample at (sx, sy) with per-neighbour bounds checks and fill. */
static float sample_checked(const uint8_t *s, int h, int w, const float *lut, double sx,
                            double sy, int border, float fillv) {
    double flx = floor(sx), fly = floor(sy);
    int x0 = (int)flx, y0 = (int)fly;
    float fx = (float)(sx - flx), fy = (float)(sy - fly);
    float v[4];
    for (int j = 0; j < 4; j++) {
        int xx = x0 + (j & 1), yy = y0 + (j >> 1);
        if (border) {
            xx = xx < 0 ? 0 : (xx >= w ? w - 1 : xx);
            yy = yy < 0 ? 0 : (yy >= h ? h - 1 : yy);
            v[j] = lut[s[(size_t)yy * w + xx]];
        } else if (xx >= 0 && yy >= 0 && xx < w && yy < h) {
            v[j] = lut[s[(size_t)yy * w + xx]];
        } else {
            v[j] = fillv;
        }
    }
    float top = v[0] + (v[1] - v[0]) * fx;
    float bot = v[2] + (v[3] - v[2]) * fx;
    return top + (bot - top) * fy;
}

/* Narrows [*lo, *hi) to the x where EPS <= a*x + b <= lim - 1 - EPS.  The
 * margin EPS (far above the ~1e-12 rounding error of a*x + b) guarantees
 * that every x kept has floor(a*x + b) in [0, lim - 2], whatever the slope. */
static void narrow(double a, double b, int lim, double *lo, double *hi) {
    const double EPS = 1e-6, bot = EPS, top = (double)lim - 1 - EPS;
    if (fabs(a) < 1e-9) { /* (nearly) constant along the row */
        /* varies by < 1e-9 * width << EPS: checking both ends suffices */
        double e1 = a * *lo + b, e2 = a * *hi + b;
        if (!(e1 >= bot && e1 <= top && e2 >= bot && e2 <= top))
            *hi = *lo;
        return;
    }
    double x1 = (bot - b) / a, x2 = (top - b) / a;
    double l = a > 0 ? x1 : x2, r = a > 0 ? x2 : x1;
    *lo = fmax(*lo, ceil(l));
    *hi = fmin(*hi, floor(r) + 1);
}

/* Output columns [*xa, *xb) of a row whose bilinear footprint lies inside
 * the source, for sx = ax*x + bx, sy = ay*x + by. */
static void interior_range(double ax, double bx, int w, double ay, double by, int h, int ow,
                           int *xa, int *xb) {
    double lo = 0, hi = ow;
    narrow(ax, bx, w, &lo, &hi);
    narrow(ay, by, h, &lo, &hi);
    lo = fmin(fmax(lo, 0), ow);
    hi = fmin(fmax(hi, lo), ow);
    *xa = (int)lo;
    *xb = (int)hi;
}

#define CHUNK 256 /* columns per coordinate batch in the bilinear interior */

/* Is the whole map an integer gather (no rotation, integer shift)? */
static int is_integer_map(const nn_aug_params *p) {
    return fmod(p->angle_deg, 360.0) == 0.0 && p->dx == floor(p->dx) &&
           p->dy == floor(p->dy);
}

int nn_aug_apply(const uint8_t *src, int c, int h, int w,
                 const nn_aug_params *p, const float *mean, const float *std,
                 float *dst) {
    int rc = validate(src, c, h, w, mean, std, dst);
    if (rc || (rc = nn_aug_params_check(p)))
        return rc;
    int oh, ow;
    nn_aug_out_shape(h, w, p, &oh, &ow);
    size_t plane = (size_t)h * (size_t)w, oplane = (size_t)oh * (size_t)ow;

    float lut[256];
    tone_lut(p->gamma, lut);
    const int do_contrast = p->contrast != 1.0;
    const float cf = (float)p->contrast;

    /* Inverse map of the dihedral part: src = A^T (out - t). */
    imap f = dihedral_forward(p->dihedral, h, w);
    const int integer_map = is_integer_map(p);
    const int shifted = p->dx != 0.0 || p->dy != 0.0;

    /* General map src = G q + g (only used when !integer_map). */
    double G00 = 0, G01 = 0, G10 = 0, G11 = 0, g0 = 0, g1 = 0;
    if (!integer_map) {
        double th = p->angle_deg * (M_PI / 180.0);
        double cs = cos(th), sn = sin(th);
        /* Rinv = [[cs, -sn], [sn, cs]]; Minv = A^T = [[a, c], [b, d]] */
        double ma = f.a, mb = f.c, mc = f.b, md = f.d; /* Minv rows */
        G00 = ma * cs + mb * sn;
        G01 = -ma * sn + mb * cs;
        G10 = mc * cs + md * sn;
        G11 = -mc * sn + md * cs;
        double cx = (ow - 1) * 0.5, cy = (oh - 1) * 0.5;
        double ux = p->dx + cx, uy = p->dy + cy;
        double vx = cx - (cs * ux - sn * uy) - f.tx;
        double vy = cy - (sn * ux + cs * uy) - f.ty;
        g0 = ma * vx + mb * vy;
        g1 = mc * vx + md * vy;
    }

    for (int ch = 0; ch < c; ch++) {
        const uint8_t *s = src + (size_t)ch * plane;
        float *o = dst + (size_t)ch * oplane;
        photo ph = {(float)p->brightness, mean[ch], std[ch]};
        /* Fill tone for revealed regions. */
        float fillv = (float)p->fill_value;
        if (p->fill == NN_AUG_FILL_MEAN && (shifted || !integer_map)) {
            /* mean tone through a histogram: one integer increment per pixel */
            uint32_t hist[256] = {0};
            for (size_t i = 0; i < plane; i++)
                hist[s[i]]++;
            double sum = 0;
            for (int v = 0; v < 256; v++)
                sum += (double)hist[v] * lut[v];
            fillv = (float)(sum / (double)plane);
        }
        const int border = p->fill == NN_AUG_FILL_BORDER;
        double csum = 0;

        if (integer_map) {
            int ddx = (int)p->dx, ddy = (int)p->dy;
            /* source col/row of output (x, y): A^T (q - d - t) */
            for (int y = 0; y < oh; y++) {
                int qy = y - ddy - f.ty;
                int qx0 = -ddx - f.tx;
                int sx = f.a * qx0 + f.c * qy, sy = f.b * qx0 + f.d * qy;
                float *orow = o + (size_t)y * ow;
                if (!shifted) {
                    const uint8_t *sp = s + (ptrdiff_t)sy * w + sx;
                    ptrdiff_t step = f.a + (ptrdiff_t)f.b * w;
                    for (int x = 0; x < ow; x++, sp += step)
                        orow[x] = lut[*sp];
                } else {
                    for (int x = 0; x < ow; x++, sx += f.a, sy += f.b) {
                        float t;
                        if ((unsigned)sx < (unsigned)w && (unsigned)sy < (unsigned)h)
                            t = lut[s[(size_t)sy * w + sx]];
                        else if (border) {
                            int bx = sx < 0 ? 0 : (sx >= w ? w - 1 : sx);
                            int by = sy < 0 ? 0 : (sy >= h ? h - 1 : sy);
                            t = lut[s[(size_t)by * w + bx]];
                        } else
                            t = fillv;
                        orow[x] = t;
                    }
                }
                if (do_contrast) /* row-major, as the reference sums */
                    for (int x = 0; x < ow; x++)
                        csum += orow[x];
            }
        } else {
            for (int y = 0; y < oh; y++) {
                double rx = G01 * y + g0, ry = G11 * y + g1;
                float *orow = o + (size_t)y * ow;
                int xa, xb;
                interior_range(G00, rx, w, G10, ry, h, ow, &xa, &xb);
                for (int x = 0; x < xa; x++)
                    orow[x] = sample_checked(s, h, w, lut, G00 * x + rx, G10 * x + ry,
                                             border, fillv);
                /* all four neighbours inside: no checks.  In chunks: first the
                 * coordinates (vectorisable), then the gathers and lerps. */
                for (int x0c = xa; x0c < xb; x0c += CHUNK) {
                    int n = xb - x0c < CHUNK ? xb - x0c : CHUNK;
                    int32_t off[CHUNK];
                    float fxv[CHUNK], fyv[CHUNK];
                    for (int i = 0; i < n; i++) {
                        double sx = G00 * (x0c + i) + rx, sy = G10 * (x0c + i) + ry;
                        double flx = floor(sx), fly = floor(sy);
                        fxv[i] = (float)(sx - flx);
                        fyv[i] = (float)(sy - fly);
                        off[i] = (int32_t)fly * w + (int32_t)flx;
                    }
                    float *op = orow + x0c;
                    for (int i = 0; i < n; i++) {
                        const uint8_t *sp = s + off[i];
                        float v00 = lut[sp[0]], v01 = lut[sp[1]];
                        float v10 = lut[sp[w]], v11 = lut[sp[w + 1]];
                        float top = v00 + (v01 - v00) * fxv[i];
                        float bot = v10 + (v11 - v10) * fxv[i];
                        op[i] = top + (bot - top) * fyv[i];
                    }
                }
                for (int x = xb; x < ow; x++)
                    orow[x] = sample_checked(s, h, w, lut, G00 * x + rx, G10 * x + ry,
                                             border, fillv);
                if (do_contrast)
                    for (int x = 0; x < ow; x++)
                        csum += orow[x];
            }
        }

        /* Photometric pass over the (cache-hot) plane. */
        if (do_contrast) {
            float m = (float)(csum / (double)oplane);
            for (size_t i = 0; i < oplane; i++)
                o[i] = finish(clamp01((o[i] - m) * cf + m), &ph);
        } else {
            for (size_t i = 0; i < oplane; i++)
                o[i] = finish(o[i], &ph);
        }
    }
    return LUMEN_OK;
}

int nn_aug_dihedral(const uint8_t *src, int c, int h, int w, int k,
                    const float *mean, const float *std, float *dst) {
    nn_aug_params p;
    nn_aug_params_identity(&p);
    p.dihedral = k;
    return nn_aug_apply(src, c, h, w, &p, mean, std, dst);
}

int nn_aug_dihedral_f32(const float *src, int c, int h, int w, int k,
                        float *dst) {
    if (!src || !dst || c <= 0 || h <= 0 || w <= 0 || k < 0 ||
        k >= NN_AUG_DIHEDRAL_N)
        return LUMEN_EINVAL;
    imap f = dihedral_forward(k, h, w);
    int oh = (k & 1) ? w : h, ow = (k & 1) ? h : w;
    size_t plane = (size_t)h * w;
    for (int ch = 0; ch < c; ch++) {
        const float *s = src + ch * plane;
        float *o = dst + ch * plane;
        for (int y = 0; y < oh; y++) {
            int qy = y - f.ty, qx0 = -f.tx;
            int sx = f.a * qx0 + f.c * qy, sy = f.b * qx0 + f.d * qy;
            const float *sp = s + (ptrdiff_t)sy * w + sx;
            ptrdiff_t step = f.a + (ptrdiff_t)f.b * w;
            for (int x = 0; x < ow; x++, sp += step)
                o[(size_t)y * ow + x] = *sp;
        }
    }
    return LUMEN_OK;
}
