/*
 * cmd_plugins.c -- `runner plugins`: the plugin folders searched, every
 * stage found (name, version, ABI, cacheable, file, summary) and every
 * refused file with the reason.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "commands.h"

int rn_cmd_plugins(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            printf("usage: runner plugins\n\nLists the stage plugins found and the files refused, with the reason.\n");
            return RN_EXIT_OK;
        }
        rn_cli_error("plugins: unexpected argument '%s'", argv[i]);
        return RN_EXIT_USAGE;
    }
    rn_paths paths;
    rn_registry *reg;
    if (rn_cli_setup(&paths, &reg)) return RN_EXIT_FAIL;
    printf("plugin folders (in search order):\n");
    for (size_t i = 0; i < reg->dirs.n; i++) printf("  %s\n", reg->dirs.v[i]);
    putchar('\n');
    if (reg->n_stages == 0) {
        printf("no stage plugins found\n");
    } else {
        size_t cols = 6, rows = reg->n_stages + 1;
        const char **cells = calloc(rows * cols, sizeof *cells);
        char (*abi)[16] = calloc(rows, sizeof *abi);
        if (!cells || !abi) {
            free(cells);
            free(abi);
            rn_registry_free(reg);
            rn_paths_free(&paths);
            rn_cli_error("out of memory");
            return RN_EXIT_FAIL;
        }
        const char *head[] = {"STAGE", "VERSION", "ABI", "CACHED", "PLUGIN", "SUMMARY"};
        memcpy(cells, head, sizeof head);
        for (size_t i = 0; i < reg->n_stages; i++) {
            const lumen_stage *st = reg->stages[i].desc;
            const char **row = cells + (i + 1) * cols;
            snprintf(abi[i], sizeof abi[i], "%u", (unsigned)st->abi_version);
            row[0] = st->name;
            row[1] = st->version;
            row[2] = abi[i];
            row[3] = (st->flags & LUMEN_STAGE_CACHEABLE) ? "yes" : "no";
            row[4] = rn_display_path(paths.cwd, reg->stages[i].path);
            row[5] = st->summary ? st->summary : "";
        }
        rn_cli_table(cells, rows, cols);
        free(cells);
        free(abi);
    }
    if (reg->n_refused) {
        printf("\nrefused:\n");
        for (size_t i = 0; i < reg->n_refused; i++)
            printf("  %s: %s\n", rn_display_path(paths.cwd, reg->refused[i].path), reg->refused[i].reason);
    }
    rn_registry_free(reg);
    rn_paths_free(&paths);
    return RN_EXIT_OK;
}
