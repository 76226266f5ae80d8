/* no_entry.c -- test plugin without the lumen_plugin_stages entry symbol
 * (it exports a misspelt one): the runner must refuse it, naming the
 * symbol. */
#include <lumen/plugin.h>

LUMEN_EXPORT int lumen_plugin_stagez(void);
LUMEN_EXPORT int lumen_plugin_stagez(void) { return 0; }
