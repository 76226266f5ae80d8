/*
 * version.h -- the runner's version string.
 *
 * Recorded in status.json of every run and printed by `runner --version`.
 * Bump the minor number when the run-folder layout or the experiment language
 * gains something; the plugin ABI has its own number (LUMEN_ABI_VERSION).
 */
#ifndef RN_VERSION_H
#define RN_VERSION_H

#define RN_VERSION "0.1.0"

#endif /* RN_VERSION_H */
