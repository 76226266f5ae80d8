/* fp32 FMA peak of this machine: OpenMP threads each run independent vector
 * FMA chains (GCC vector extensions, 8 lanes; -march=native makes them
 * AVX2/AVX-512 FMAs).  Prints {"peak_gflops": ..., "threads": ...}.
 * usage: fma_peak [threads] -- the yardstick for "share of peak" in bench
 * reports. */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>

#include <immintrin.h>

typedef float v8 __attribute__((vector_size(32)));

/* explicit FMA: -std=c11 turns off GCC's automatic contraction */
static inline v8 vfma(v8 a, v8 b, v8 c) {
#ifdef __FMA__
    return (v8)_mm256_fmadd_ps((__m256)a, (__m256)b, (__m256)c);
#else
    return a * b + c;
#endif
}

int main(int argc, char **argv) {
    int threads = argc > 1 ? atoi(argv[1]) : omp_get_max_threads();
    const long iters = 200000000L / 8;
    double best = 0;
    for (int rep = 0; rep < 3; rep++) {
        double t0 = omp_get_wtime(), sink = 0;
#pragma omp parallel num_threads(threads) reduction(+ : sink)
        {
            v8 m = {1.0f, 1.0f, 1.0f, 1.0f, 1.0f, 1.0f, 1.0f, 1.0f}, c = m * 1e-7f;
            v8 a0 = m * 0.f, a1 = m * 1.f, a2 = m * 2.f, a3 = m * 3.f, a4 = m * 4.f, a5 = m * 5.f;
            v8 a6 = m * 6.f, a7 = m * 7.f, a8 = m * 8.f, a9 = m * 9.f, a10 = m * 10.f, a11 = m * 11.f;
            for (long it = 0; it < iters; it++) { /* 12 independent chains */
                a0 = vfma(a0, m, c); a1 = vfma(a1, m, c); a2 = vfma(a2, m, c);
                a3 = vfma(a3, m, c); a4 = vfma(a4, m, c); a5 = vfma(a5, m, c);
                a6 = vfma(a6, m, c); a7 = vfma(a7, m, c); a8 = vfma(a8, m, c);
                a9 = vfma(a9, m, c); a10 = vfma(a10, m, c); a11 = vfma(a11, m, c);
            }
            sink += (a0 + a1 + a2 + a3 + a4 + a5 + a6 + a7 + a8 + a9 + a10 + a11)[0];
        }
        double t = omp_get_wtime() - t0;
        double gf = 2.0 * 8 * 12 * iters * threads / t / 1e9;
        if (gf > best) best = gf;
        if (sink == 12345.0) printf("!");
    }
    printf("{\"peak_gflops\":%.1f,\"threads\":%d}\n", best, threads);
    return 0;
}
