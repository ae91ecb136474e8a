/* The batch maker and its worker thread (include/genesis/batch.h). */
#include "check.h"
#include "genesis/batch.h"
#include "genesis/config.h"
#include "genesis/error.h"

#include <stdint.h>
#include <string.h>

enum { R = 32, C = 24, D = 16, NV = R * C * D, B = 5 };

int main(void)
{
    static float cubes[B][NV], in1[B * NV], tg1[B * NV], in2[B * NV], tg2[B * NV];
    static float one_in[NV], one_tg[NV];
    for (int b = 0; b < B; b++)
        for (int v = 0; v < NV; v++) cubes[b][v] = (float)((v * 7 + b * 131) % 997) / 997.0f;
    const float *ptrs[B];
    for (int b = 0; b < B; b++) ptrs[b] = cubes[(b * 3) % B]; /* any order, repeats allowed */
    const int64_t index[B] = {17, 3, 99999999999, 0, 42};
    struct corrupt_record rec1[B], rec2[B];

    genesis_config defaults;
    EXPECT_OK(config_defaults(&defaults));
    struct config_corrupt cfg = defaults.corrupt; /* the paper\'s */
    cfg.flip_rate = cfg.local_rate = cfg.nonlinear_rate = cfg.paint_rate = 0.7;
    struct corrupt_workspace *ws;
    EXPECT_OK(corrupt_workspace_create(&ws, &cfg, R, C, D));
    struct batch_job job = {.seed = 5, .epoch = 2, .n = B, .sample_index = index, .cubes = ptrs,
                            .inputs = in1, .targets = tg1, .records = rec1};
    EXPECT_OK(batch_make(ws, &job));
    /* each pair is the sample's own corruption */
    for (int b = 0; b < B; b++) {
        struct corrupt_record r;
        EXPECT_OK(corrupt_sample(ws, 5, 2, (uint64_t)index[b], ptrs[b], one_in, one_tg, &r));
        EXPECT(memcmp(one_in, in1 + (size_t)b * NV, sizeof one_in) == 0 &&
                   memcmp(one_tg, tg1 + (size_t)b * NV, sizeof one_tg) == 0 &&
                   memcmp(&r, &rec1[b], sizeof r) == 0,
               "batch sample %d differs from corrupt_sample", b);
    }

    /* the worker gives the same batch, while this thread does something else */
    struct batch_worker *w;
    EXPECT_OK(batch_worker_create(&w, &cfg, R, C, D));
    EXPECT(batch_worker_wait(w) == GEN_ERR_USAGE, "wait without a job accepted");
    for (int round = 0; round < 3; round++) {
        memset(in2, 0, sizeof in2);
        job.inputs = in2;
        job.targets = tg2;
        job.records = rec2;
        EXPECT_OK(batch_worker_start(w, &job));
        job.inputs = NULL; /* the worker copied the job struct */
        EXPECT(batch_worker_start(w, &job) == GEN_ERR_USAGE, "second start accepted");
        EXPECT(strstr(gen_error_message(), "waited") != NULL, "message: %s",
               gen_error_message());
        double busy = 0;
        for (int i = 0; i < 100000; i++) busy += i * 1e-9;
        EXPECT(busy > 0, "busy");
        EXPECT_OK(batch_worker_wait(w));
        EXPECT(memcmp(in1, in2, sizeof in1) == 0 && memcmp(tg1, tg2, sizeof tg1) == 0 &&
                   memcmp(rec1, rec2, sizeof rec1) == 0,
               "round %d: worker batch differs", round);
    }

    /* an error inside the worker reaches the waiting thread */
    const int64_t bad_index[B] = {1, 2, -3, 4, 5};
    job.sample_index = bad_index;
    job.inputs = in2;
    EXPECT_OK(batch_worker_start(w, &job));
    EXPECT(batch_worker_wait(w) == GEN_ERR_USAGE, "negative index accepted");
    EXPECT(strstr(gen_error_message(), "batch worker") && strstr(gen_error_message(), "-3"),
           "message: %s", gen_error_message());
    /* the worker is usable again, and destroy waits for a running job */
    job.sample_index = index;
    EXPECT_OK(batch_worker_start(w, &job));
    batch_worker_destroy(w);

    struct batch_job empty = {.n = 0};
    EXPECT_OK(batch_make(ws, &empty));
    corrupt_workspace_destroy(ws);
    TEST_MAIN_END();
}
