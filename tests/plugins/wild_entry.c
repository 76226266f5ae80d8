/* wild_entry.c -- test plugin whose lumen_plugin_stages returns a wild
 * pointer: reading the list faults, so the runner must refuse the file
 * ("crashed while loading: signal 11") and go on, not die. */
#include <stdint.h>

#include <lumen/plugin.h>

LUMEN_EXPORT const lumen_stage *const *lumen_plugin_stages(uint32_t host_abi) {
    (void)host_abi;
    return (const lumen_stage *const *)(uintptr_t)16;
}
