/*
 * commands.h -- the runner's commands.
 *
 * Each command is `int rn_cmd_<name>(int argc, char **argv)` in
 * runner/cmd_<name>.c, called with argv[0] = the command name and returning
 * the process exit status (cli.h: RN_EXIT_*).  To add one: write the file,
 * declare it here, and add one line to the table in main.c.
 */
#ifndef RN_COMMANDS_H
#define RN_COMMANDS_H

/* runner [run] EXPERIMENT.lua [--set S.K=V]... [--runs DIR] [--force]
 *        [--dry-run] [--smoke] [--threads N] */
int rn_cmd_run(int argc, char **argv);
/* runner plugins: found stages, and refused files with the reason. */
int rn_cmd_plugins(int argc, char **argv);
/* runner describe STAGE: inputs, outputs, cacheability, parameter table. */
int rn_cmd_describe(int argc, char **argv);
/* runner runs [EXPERIMENT] [--runs DIR]: recorded runs as a table. */
int rn_cmd_runs(int argc, char **argv);

/* Usage text of `runner run` (shared by --help outputs). */
extern const char rn_run_usage[];

#endif /* RN_COMMANDS_H */
