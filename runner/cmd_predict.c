/*
 * cmd_predict.c -- `runner predict CHECKPOINT (--csv FILE [--root DIR] |
 * IMAGE ...) [--out FILE] [--tta] [--batch N] [--threads N] [--backend B]`:
 * predictions for images that were never ingested.
 *
 * Each image is decoded, converted and resized exactly as ingest stores it
 * (infer.h), normalized with the checkpoint's stats and run through the
 * engine in eval mode (BN folded).  Output (to --out, written atomically,
 * else stdout), one row per usable image in the order given:
 *
 *   filename;p_crack;p_inactive;crack;inactive
 *   images/a.png;0.912345671;0.0123456789;1;0
 *
 * probabilities with 9 significant digits (a float reads back exactly),
 * then 0/1 decisions at the checkpoint's stored thresholds (0.5 when it has
 * none).  A filename holding ';', '"' or a line break is quoted as in CSV.
 * An image that cannot be used (missing, not a PNG, truncated, a bad CSV
 * row) is reported on stderr naming the file; the others are still
 * predicted, and the last stderr line says "N of M images failed" with exit
 * status 1.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "commands.h"
#include "infer_cli.h"

static const char USAGE[] =
    "usage: runner predict (CHECKPOINT | --ensemble CKPT... --) (--csv FILE [--root DIR] | IMAGE ...)\n"
    "                      [--out FILE]\n"
    "                      [--tta] [--batch N] [--threads N] [--backend auto|cpu|cuda|ref]\n"
    "\n"
    "Predicts PNG images with a lumen checkpoint (best.safetensors of a train or validate\n"
    "stage): decoded and resized like ingest, normalized with the checkpoint's stats.\n"
    "Writes 'filename;p_<label>...;<label>...' (probabilities, then 0/1 decisions at the\n"
    "checkpoint's thresholds) to --out or stdout.  With --csv, the first column names the\n"
    "images (relative to --root, default the CSV's folder); other columns are ignored.\n"
    "--tta averages over the dihedral views.  Exit status 1 when any image failed.\n"
    "An ensemble (--ensemble A.safetensors B.safetensors ..., or a manifest ensemble.json\n"
    "or a folder of checkpoints as CHECKPOINT) averages its models' probabilities and\n"
    "decides at the manifest's thresholds (else the first model's).\n";

/* Appends one CSV field (quoted when needed). */
static int put_field(FILE *f, const char *s) {
    if (!strpbrk(s, ";\"\r\n") && s[0] != ' ' && s[0] != '\t' &&
        (!*s || (s[strlen(s) - 1] != ' ' && s[strlen(s) - 1] != '\t')))
        return fputs(s, f);
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"') fputc('"', f);
        fputc(*s, f);
    }
    return fputc('"', f);
}

/* The whole output as one malloc'ed text (*len bytes). */
static char *render(const rn_infer_session *s, size_t *len) {
    char *buf = NULL;
    FILE *f = open_memstream(&buf, len);
    if (!f) return NULL;
    const lm_infer_model *m = &s->model;
    fputs("filename", f);
    for (int j = 0; j < m->k; j++) {
        fputs(";p_", f);
        put_field(f, m->labels[j]);
    }
    for (int j = 0; j < m->k; j++) {
        fputc(';', f);
        put_field(f, m->labels[j]);
    }
    fputc('\n', f);
    const lm_eval_result *r = &s->result;
    for (int64_t i = 0; i < r->n; i++) {
        put_field(f, s->set.names[r->index[i]]);
        const float *p = r->probs + i * r->k;
        for (int j = 0; j < r->k; j++) fprintf(f, ";%.9g", (double)p[j]);
        for (int j = 0; j < r->k; j++) fprintf(f, ";%d", p[j] >= m->thresholds[j]);
        fputc('\n', f);
    }
    if (fclose(f) != 0) {
        free(buf);
        return NULL;
    }
    return buf;
}

int rn_cmd_predict(int argc, char **argv) {
    rn_infer_args a;
    rn_infer_args_default(&a);
    const char *out = NULL, *v;
    const char **images = calloc((size_t)argc + 1, sizeof *images);
    size_t nimages = 0;
    if (!images) {
        rn_cli_error("out of memory");
        return RN_EXIT_FAIL;
    }
    static const char *const known[] = {"--csv", "--root", "--out",  "--tta", "--batch",
                                        "--threads", "--backend", "--ensemble", "--help", NULL};
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--")) { /* the rest are images (after --ensemble ...) */
            while (++i < argc) images[nimages++] = argv[i];
            break;
        }
        int m = rn_infer_option("predict", argc, argv, &i, &a);
        if (m == 0 && (m = rn_cli_value(argc, argv, &i, "--out", &v)) == 1) out = v;
        if (m < 0) {
            free(images);
            return RN_EXIT_USAGE;
        }
        if (m) continue;
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            fputs(USAGE, stdout);
            free(images);
            return RN_EXIT_OK;
        }
        if (argv[i][0] == '-' && argv[i][1]) {
            rn_cli_unknown_option(argv[i], known);
            free(images);
            return RN_EXIT_USAGE;
        }
        if (!a.checkpoint && !a.n_ensemble) a.checkpoint = argv[i];
        else images[nimages++] = argv[i];
    }
    const char *why = !a.checkpoint && !a.n_ensemble ? "no CHECKPOINT given"
                      : a.csv && nimages           ? "give either --csv or IMAGE arguments, not both"
                      : !a.csv && nimages == 0     ? "no images given (IMAGE ... or --csv FILE)"
                                                   : NULL;
    if (why) {
        fputs(USAGE, stderr);
        rn_cli_error("predict: %s", why);
        free(images);
        return RN_EXIT_USAGE;
    }

    rn_infer_session s;
    lm_err e = {0};
    int status = RN_EXIT_OK;
    int rc = rn_infer_session_load(&a, 1, images, nimages, &s, &e);
    free(images);
    if (rc) {
        rn_cli_error("predict: %s", e.msg);
        rn_infer_session_free(&s);
        return RN_EXIT_FAIL;
    }
    for (size_t i = 0; i < s.probs.kept; i++) fprintf(stderr, "runner: predict: %s\n", s.probs.msg[i]);
    if (s.probs.count > s.probs.kept)
        fprintf(stderr, "runner: predict: ... and %zu more bad rows\n", s.probs.count - s.probs.kept);
    for (size_t i = 0; i < s.set.n; i++)
        if (s.set.errors[i]) fprintf(stderr, "runner: predict: %s\n", s.set.errors[i]);
    size_t failed = s.probs.count + s.set.nfailed;

    if (s.set.n > s.set.nfailed && (rc = rn_infer_session_run(&a, &s, &e))) {
        rn_cli_error("predict: %s", e.msg);
        rn_infer_session_free(&s);
        return RN_EXIT_FAIL;
    }
    size_t len = 0;
    char *text = render(&s, &len);
    if (!text) {
        rn_cli_error("predict: out of memory");
        status = RN_EXIT_FAIL;
    } else if (out) {
        if (lm_write_file_atomic(out, text, len, &e)) {
            rn_cli_error("predict: %s", e.msg);
            status = RN_EXIT_FAIL;
        }
    } else if (fwrite(text, 1, len, stdout) != len || fflush(stdout) != 0) {
        rn_cli_error("predict: writing the predictions to stdout failed");
        status = RN_EXIT_FAIL;
    }
    free(text);
    if (failed) {
        rn_cli_error("predict: %zu of %zu images failed", failed, s.listed);
        status = RN_EXIT_FAIL;
    }
    rn_infer_session_free(&s);
    return status;
}
