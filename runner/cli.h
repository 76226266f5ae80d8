/*
 * cli.h -- helpers shared by the runner's commands (cmd_*.c): messages,
 * option parsing, exit codes, and the common setup (paths + plugins).
 *
 * Convention: a failing command prints its cause as the LAST line on stderr,
 * "runner: <cause>", and returns RN_EXIT_FAIL (or RN_EXIT_USAGE for a bad
 * command line).
 */
#ifndef RN_CLI_H
#define RN_CLI_H

#include "lm_util.h"
#include "plugin_loader.h"
#include "paths.h"

#define RN_EXIT_OK 0
#define RN_EXIT_FAIL 1
#define RN_EXIT_USAGE 2

/* "runner: <msg>\n" on stderr. */
void rn_cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* "runner: warning: <msg>\n" on stderr. */
void rn_cli_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Matches argv[*i] against an option taking a value, written "--name VALUE"
 * or "--name=VALUE".  Returns 1 (value in *val, *i advanced past it), 0
 * when argv[*i] is another argument, -1 when the value is missing (an
 * error is printed). */
int rn_cli_value(int argc, char **argv, int *i, const char *name, const char **val);

/* Prints "runner: unknown option '--x' (did you mean '--y'?)" for a
 * command whose options are `known` (NULL-terminated). */
void rn_cli_unknown_option(const char *arg, const char *const *known);

/* Fills paths and loads the plugin registry; prints the cause on failure.
 * Returns 0 or RN_EXIT_FAIL.  Free with rn_paths_free/rn_registry_free. */
int rn_cli_setup(rn_paths *paths, rn_registry **reg);

/* Prints `rows` x `cols` cells as an aligned table on stdout; the last
 * column is not padded.  cells[r * cols + c]; NULL prints "-". */
void rn_cli_table(const char *const *cells, size_t rows, size_t cols);

#endif /* RN_CLI_H */
