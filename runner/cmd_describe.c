/*
 * cmd_describe.c -- `runner describe STAGE`: a stage's summary, plugin
 * file, inputs, outputs, cacheability and parameter table (name, type,
 * default, range or choices, flags, doc).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "commands.h"
#include "jsonutil.h"
#include "stage_params.h"
#include "suggest.h"

static void list(const char *label, const char *const *l) {
    printf("%s:", label);
    if (!l || !l[0]) printf(" (none)");
    for (size_t i = 0; l && l[i]; i++) {
        size_t n = strlen(l[i]);
        if (l[i][n - 1] == '?') printf(" %.*s (optional)", (int)(n - 1), l[i]);
        else printf(" %s", l[i]);
    }
    putchar('\n');
}

static int print_stage(const rn_stage_ref *ref, const char *cwd) {
    const lumen_stage *st = ref->desc;
    printf("%s %s -- %s\n", st->name, st->version, st->summary ? st->summary : "");
    printf("plugin: %s\n", rn_display_path(cwd, ref->path));
    list("inputs", st->inputs);
    list("outputs", st->outputs);
    printf("cacheable: %s\n", (st->flags & LUMEN_STAGE_CACHEABLE) ? "yes" : "no");
    size_t n = 0;
    while (st->params && st->params[n].name) n++;
    if (n == 0) {
        printf("parameters: (none)\n");
        return RN_EXIT_OK;
    }
    printf("parameters:\n");
    size_t cols = 6, rows = n + 1;
    const char **cells = calloc(rows * cols, sizeof *cells);
    char (*range)[96] = calloc(rows, sizeof *range);
    char (*flags)[24] = calloc(rows, sizeof *flags);
    if (!cells || !range || !flags) {
        free(cells);
        free(range);
        free(flags);
        rn_cli_error("out of memory");
        return RN_EXIT_FAIL;
    }
    const char *head[] = {"  NAME", "TYPE", "DEFAULT", "RANGE/CHOICES", "FLAGS", "DOC"};
    memcpy(cells, head, sizeof head);
    char (*names)[96] = calloc(rows, sizeof *names);
    for (size_t i = 0; names && i < n; i++) {
        const lumen_param *p = &st->params[i];
        const char **row = cells + (i + 1) * cols;
        snprintf(names[i], sizeof names[i], "  %s", p->name);
        row[0] = names[i];
        row[1] = rn_ptype_name(p->type);
        row[2] = (p->flags & LUMEN_PF_REQUIRED) ? "(required)" : p->def ? p->def : "(unset)";
        if (p->type == LUMEN_ENUM) {
            snprintf(range[i], sizeof range[i], "%s", p->choices);
        } else if (!(p->min == 0 && p->max == 0)) {
            char a[32], b[32];
            snprintf(range[i], sizeof range[i], "[%s, %s]", rn_num_str(p->min, a, sizeof a),
                     rn_num_str(p->max, b, sizeof b));
        }
        row[3] = range[i][0] ? range[i] : "";
        snprintf(flags[i], sizeof flags[i], "%s%s%s", (p->flags & LUMEN_PF_REQUIRED) ? "required" : "",
                 (p->flags & LUMEN_PF_REQUIRED) && (p->flags & LUMEN_PF_AUTO) ? "," : "",
                 (p->flags & LUMEN_PF_AUTO) ? "auto" : "");
        row[4] = flags[i];
        row[5] = p->doc ? p->doc : "";
    }
    if (names) rn_cli_table(cells, rows, cols);
    free(names);
    free(cells);
    free(range);
    free(flags);
    return names ? RN_EXIT_OK : RN_EXIT_FAIL;
}

int rn_cmd_describe(int argc, char **argv) {
    if (argc == 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        printf("usage: runner describe STAGE\n\nShows a stage's inputs, outputs and parameter table.\n");
        return RN_EXIT_OK;
    }
    if (argc != 2) {
        rn_cli_error("usage: runner describe STAGE");
        return RN_EXIT_USAGE;
    }
    char *name = lm_strdup(argv[1]);
    if (!name) {
        rn_cli_error("out of memory");
        return RN_EXIT_FAIL;
    }
    for (char *c = name; *c; c++)
        if (*c == '_') *c = '-'; /* the Lua spelling (normalize_stats) works too */
    rn_paths paths;
    rn_registry *reg;
    if (rn_cli_setup(&paths, &reg)) {
        free(name);
        return RN_EXIT_FAIL;
    }
    int status = RN_EXIT_FAIL;
    const rn_stage_ref *ref = rn_registry_find(reg, name);
    if (ref) {
        status = print_stage(ref, paths.cwd);
    } else {
        const rn_refusal *why = rn_registry_refusal_for(reg, name);
        if (why) {
            rn_cli_error("stage '%s': plugin %s was refused: %s", name, why->path, why->reason);
        } else {
            const char **names = calloc(reg->n_stages + 1, sizeof *names);
            for (size_t i = 0; names && i < reg->n_stages; i++) names[i] = reg->stages[i].desc->name;
            char hint[160] = "";
            if (names) rn_suggest_phrase(hint, sizeof hint, name, names, reg->n_stages);
            free(names);
            rn_cli_error("unknown stage '%s'%s (runner plugins lists the stages found)", name, hint);
        }
    }
    rn_registry_free(reg);
    rn_paths_free(&paths);
    free(name);
    return status;
}
