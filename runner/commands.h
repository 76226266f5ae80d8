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

/* runner predict CHECKPOINT (--csv FILE [--root DIR] | IMAGE ...) [--out FILE]
 *        [--tta] [--batch N] [--threads N] [--backend B]: predictions for
 *        PNG images (decoded like ingest) as 'filename;p_<label>...;<label>...'. */
int rn_cmd_predict(int argc, char **argv);
/* runner eval CHECKPOINT --csv FILE [--root DIR] [--tta] [--thresholds
 *        stored|tune|fixed] [--threshold T] [--seed N] ...: the validate
 *        metrics on a labelled CSV as one JSON document on stdout. */
int rn_cmd_eval(int argc, char **argv);

/* runner combine RUN[:CONFIG[:SEED]]... [--json FILE] [--wrong FILE]
 *        [--runs DIR]: the
 *        cross-validated score of an ensemble of finished crossval runs'
 *        models, from their fold predictions (cmd_combine.c). */
int rn_cmd_combine(int argc, char **argv);

/* runner sync [RUN...] [--runs DIR] [--uri URI]: posts what tracked runs
 *        still hold in their MLflow spool (mlflow.h). */
int rn_cmd_sync(int argc, char **argv);

/* Usage text of `runner run` (shared by --help outputs). */
extern const char rn_run_usage[];

#endif /* RN_COMMANDS_H */
