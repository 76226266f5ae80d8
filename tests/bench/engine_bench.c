/* Standalone driver for `runner bench` (runner/cmd_bench.c) until the
 * runner's main.c wires the command in: build/bench/engine_bench [options]. */
#include "cmd_bench.h"

int main(int argc, char **argv) { return rn_cmd_bench(argc, argv); }
