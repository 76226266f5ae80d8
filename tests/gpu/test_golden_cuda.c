/* The golden PyTorch fixture (tests/unit/test_golden.c: logits, loss,
 * every gradient, running stats, 3 steps of Adam and of SGD against
 * torch in float64) on the cuda backend, precision fp32 (no TF32), with
 * test_golden.c's tolerances.  SKIPs, saying why, without a usable GPU. */
#define GOLDEN_NO_MAIN
#include "../unit/test_golden.c"

static char why[LM_ERR_MSG];

/* non-zero when a cuda engine can be made here (why[] says why not) */
static int cuda_usable(void) {
    nn_resnet_cfg c;
    nn_resnet_cfg_default(&c);
    c.nstages = 1;
    c.widths[0] = 8;
    c.stem_width = 8;
    nn_model *m = NULL;
    nn_engine *en = NULL;
    lm_err e = {0};
    if (nn_model_create(&c, &m, &e)) fail_msg("%s", e.msg);
    nn_engine_opts o = {.batch = 1, .channels = 1, .height = 32, .width = 32, .seed = 1};
    int rc = nn_engine_create("cuda", m, &o, &en, &e);
    snprintf(why, sizeof why, "%s", e.msg);
    nn_engine_free(en);
    nn_model_free(m);
    if (rc && rc != LUMEN_ENOTFOUND) fail_msg("cuda engine: %s", e.msg);
    return rc == 0;
}

#define NEED_CUDA()                                  \
    do {                                             \
        if (!cuda_usable()) {                        \
            print_message("SKIPPED: %s\n", why);     \
            skip();                                  \
        }                                            \
    } while (0)

static void test_cuda_forward_backward(void **s) { (void)s; NEED_CUDA(); check_forward_backward("cuda"); }
static void test_cuda_adam(void **s) { (void)s; NEED_CUDA(); check_optimizer("cuda", "adam"); }
static void test_cuda_sgd(void **s) { (void)s; NEED_CUDA(); check_optimizer("cuda", "sgd"); }

int main(void) {
    (void)test_ref_forward_backward, (void)test_cpu_forward_backward, (void)test_ref_adam;
    (void)test_cpu_adam, (void)test_ref_sgd, (void)test_cpu_sgd;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cuda_forward_backward),
        cmocka_unit_test(test_cuda_adam),
        cmocka_unit_test(test_cuda_sgd),
    };
    return cmocka_run_group_tests_name("golden (cuda)", tests, NULL, NULL);
}
