/* plugin.c -- the train plugin's one exported symbol (the descriptor is in
 * stage.c, so tests can link the stage without this symbol). */
#include "train.h"

static const lumen_stage *const TRAIN_STAGES[] = {&train_stage, NULL};

LUMEN_EXPORT const lumen_stage *const *lumen_plugin_stages(uint32_t host_abi) {
    (void)host_abi;
    return TRAIN_STAGES;
}
