/* The batch maker and its worker thread (include/genesis/batch.h). */
#include "genesis/batch.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "genesis/error.h"

int batch_make(struct corrupt_workspace *ws, const struct batch_job *job)
{
    CHECK(ws != NULL && job != NULL, GEN_ERR_USAGE, "batch_make: null argument");
    CHECK(job->n >= 0, GEN_ERR_USAGE, "batch_make: %d samples", job->n);
    if (job->n == 0) return GEN_OK;
    CHECK(job->sample_index && job->cubes && job->inputs && job->targets, GEN_ERR_USAGE,
          "batch_make: null array");
    for (int i = 0; i < job->n; i++) {
        CHECK(job->sample_index[i] >= 0, GEN_ERR_USAGE, "batch_make: sample %d has index %lld", i,
              (long long)job->sample_index[i]);
        CHECK(job->cubes[i] != NULL, GEN_ERR_USAGE, "batch_make: sample %d has no cube", i);
    }
    const size_t voxels = corrupt_workspace_voxels(ws);
    for (int i = 0; i < job->n; i++)
        CALL(corrupt_sample(ws, job->seed, job->epoch, (uint64_t)job->sample_index[i],
                            job->cubes[i], job->inputs + (size_t)i * voxels,
                            job->targets + (size_t)i * voxels,
                            job->records ? &job->records[i] : NULL));
    return GEN_OK;
}

/* ---- Worker thread --------------------------------------------------------------------------- */

enum worker_state { WORKER_IDLE, WORKER_PENDING, WORKER_RUNNING, WORKER_DONE, WORKER_QUIT };

struct batch_worker {
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t changed; /* signalled on every state change */
    enum worker_state state;
    struct corrupt_workspace *ws; /* used only by the worker thread */
    struct batch_job job;         /* the current job (copied at start) */
    int status;                   /* of the last finished job */
    char message[1024];           /* its error message and traceback */
};

static void *worker_main(void *arg)
{
    struct batch_worker *w = arg;
    pthread_mutex_lock(&w->lock);
    for (;;) {
        while (w->state != WORKER_PENDING && w->state != WORKER_QUIT)
            pthread_cond_wait(&w->changed, &w->lock);
        if (w->state == WORKER_QUIT) break;
        w->state = WORKER_RUNNING;
        struct batch_job job = w->job;
        pthread_mutex_unlock(&w->lock);

        gen_error_clear();
        int status = batch_make(w->ws, &job);

        pthread_mutex_lock(&w->lock);
        w->status = status;
        if (status != GEN_OK)
            snprintf(w->message, sizeof w->message, "%s (at %s)", gen_error_message(),
                     gen_error_traceback());
        w->state = WORKER_DONE;
        pthread_cond_broadcast(&w->changed);
    }
    pthread_mutex_unlock(&w->lock);
    return NULL;
}

int batch_worker_create(struct batch_worker **out, const struct config_corrupt *cfg, int rows,
                        int cols, int deps)
{
    CHECK(out != NULL, GEN_ERR_USAGE, "batch_worker_create: no output pointer");
    *out = NULL;
    int status = GEN_OK, have_lock = 0, have_cond = 0;
    struct batch_worker *w = calloc(1, sizeof *w);
    CHECK_ALLOC_GOTO(w, sizeof *w);
    CALL_GOTO(corrupt_workspace_create(&w->ws, cfg, rows, cols, deps));
    w->state = WORKER_IDLE;
    have_lock = pthread_mutex_init(&w->lock, NULL) == 0;
    CHECK_GOTO(have_lock, GEN_ERR_INTERNAL, "batch worker: pthread_mutex_init failed");
    have_cond = pthread_cond_init(&w->changed, NULL) == 0;
    CHECK_GOTO(have_cond, GEN_ERR_INTERNAL, "batch worker: pthread_cond_init failed");
    int rc = pthread_create(&w->thread, NULL, worker_main, w);
    CHECK_GOTO(rc == 0, GEN_ERR_INTERNAL, "batch worker: cannot start a thread (error %d)", rc);
    *out = w;
    w = NULL;
cleanup:
    if (w != NULL) {
        if (have_cond) pthread_cond_destroy(&w->changed);
        if (have_lock) pthread_mutex_destroy(&w->lock);
        corrupt_workspace_destroy(w->ws);
        free(w);
    }
    return status;
}

int batch_worker_start(struct batch_worker *w, const struct batch_job *job)
{
    CHECK(w != NULL && job != NULL, GEN_ERR_USAGE, "batch_worker_start: null argument");
    pthread_mutex_lock(&w->lock);
    enum worker_state state = w->state;
    if (state == WORKER_IDLE) {
        w->job = *job;
        w->state = WORKER_PENDING;
        pthread_cond_broadcast(&w->changed);
    }
    pthread_mutex_unlock(&w->lock);
    CHECK(state == WORKER_IDLE, GEN_ERR_USAGE,
          "batch_worker_start: the previous job has not been waited for");
    return GEN_OK;
}

int batch_worker_wait(struct batch_worker *w)
{
    CHECK(w != NULL, GEN_ERR_USAGE, "batch_worker_wait: null worker");
    pthread_mutex_lock(&w->lock);
    int started = w->state != WORKER_IDLE;
    while (started && w->state != WORKER_DONE) pthread_cond_wait(&w->changed, &w->lock);
    int status = w->status;
    char message[sizeof w->message];
    memcpy(message, w->message, sizeof message);
    if (started) {
        w->state = WORKER_IDLE;
        w->status = GEN_OK;
        w->message[0] = '\0';
    }
    pthread_mutex_unlock(&w->lock);
    CHECK(started, GEN_ERR_USAGE, "batch_worker_wait: no job was started");
    if (status != GEN_OK) FAIL(status, "batch worker: %s", message);
    return GEN_OK;
}

void batch_worker_destroy(struct batch_worker *w)
{
    if (!w) return;
    pthread_mutex_lock(&w->lock);
    while (w->state == WORKER_PENDING || w->state == WORKER_RUNNING)
        pthread_cond_wait(&w->changed, &w->lock);
    w->state = WORKER_QUIT;
    pthread_cond_broadcast(&w->changed);
    pthread_mutex_unlock(&w->lock);
    pthread_join(w->thread, NULL);
    pthread_cond_destroy(&w->changed);
    pthread_mutex_destroy(&w->lock);
    corrupt_workspace_destroy(w->ws);
    free(w);
}
