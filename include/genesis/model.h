/* The Models Genesis 3D U-Net (SPEC.md section 4) and its optimizers (src/model/).
 *
 * Memory (llm.c style): parameters, gradients, optimizer state and activations each live in ONE
 * allocation; tensors are views into them. The parameter and gradient arenas have the same layout
 * (tensor k at the same offset), so is the optimizer state: one contiguous buffer to all-reduce and
 * to checkpoint. Every parameter and buffer carries its PyTorch state_dict name and shape, in
 * state_dict order, so weights load into the reference PyTorch UNet3D without conversion.
 *
 * Tensors are float32 [N, C, D, H, W], W fastest (axes: nn.h). The model's input x and target are
 * [N, 1, D, H, W] with D, H, W multiples of 8.
 */
#ifndef GENESIS_MODEL_H
#define GENESIS_MODEL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "genesis/nn.h"

typedef struct model_config {
    int width;     /* base width w: channels of the first conv (32 = paper; tests 2..8) */
    int batch;     /* largest batch N a forward may use; activations are sized for it */
    int D, H, W;   /* input sizes, each a positive multiple of 8 */
    uint64_t seed; /* initialisation seed (keyed RNG, purpose RNG_PURPOSE_INIT) */
    size_t tile_budget_bytes; /* conv column-tile budget; 0 = 4 MiB */
    int input_grad; /* 1: backward also computes dL/dx (model_input_grad); costs one conv */
    int threads;    /* threads of the layers (nn_set_threads) in this model's passes; 0 = 1.
                       Any count gives bitwise the same results. */
} model_config;

enum model_tensor_kind {
    MODEL_PARAM = 0,  /* trainable: value in the parameter arena, gradient in the gradient arena */
    MODEL_BUFFER = 1, /* state_dict buffer: BN running_mean / running_var (float32) */
    MODEL_COUNTER = 2 /* state_dict buffer: BN num_batches_tracked, an int64 scalar (shape []).
                         The reference's ContBatchNorm3d calls F.batch_norm directly, which never
                         increments it: it stays 0 there, and so it does here (kept only so that
                         the state_dict is complete and loads with strict=True) */
};

typedef struct model_tensor {
    char name[64];      /* PyTorch state_dict key, e.g. "down_tr64.ops.0.conv1.weight" */
    int kind;           /* enum model_tensor_kind */
    int ndim;           /* 0 for the int64 scalars */
    int shape[5];
    size_t numel;
    size_t offset;      /* PARAM: offset in the parameter/gradient/optimizer arenas (floats);
                           BUFFER: offset in the buffer arena; COUNTER: index of the counter */
    float *data;        /* PARAM, BUFFER: the values; NULL for COUNTER */
    float *grad;        /* PARAM: the gradient; NULL otherwise */
    int64_t *counter;   /* COUNTER: the value; NULL otherwise */
} model_tensor;

typedef struct model model;

/* Builds the network for cfg, allocates its arenas and initialises the parameters as PyTorch's
 * defaults do (Conv3d/ConvTranspose3d: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for weight and bias,
 * fan_in = weight.size(1) * k^3; BatchNorm: weight 1, bias 0, running mean 0, var 1), each
 * parameter tensor k drawn from the keyed stream (seed, 0, k, RNG_PURPOSE_INIT).
 * Bad configurations give GEN_ERR_USAGE. *out is NULL on failure. */
int model_create(model **out, const model_config *cfg);
void model_free(model *m);
/* Re-draws the initial parameters and resets the BN buffers, as model_create did. */
int model_init_params(model *m, uint64_t seed);

/* Forward pass over n <= cfg.batch samples. x, target: [n, 1, D, H, W] (copied; the caller may
 * reuse them at once). target may be NULL (no loss; *loss untouched; no backward possible).
 * Batch norm uses the current batch's statistics and updates the running estimates, always (the
 * reference's ContBatchNorm3d does so in evaluation too). loss: MSE, mean over all elements. */
int model_forward(model *m, double *loss, const float *x, const float *target, int n);
/* Backward of the last forward (which needs a target): ACCUMULATES into the gradient arena. */
int model_backward(model *m);
void model_zero_grad(model *m);
/* The sigmoid output of the last forward, [n, 1, D, H, W]. */
const float *model_output(const model *m);
/* dL/dx of the last backward, [n, 1, D, H, W], if cfg.input_grad; else NULL. */
const float *model_input_grad(const model *m);

/* BN per-channel sums go through this hook in every forward and backward (NULL = local only);
 * see nn_reduce_hook. The hook struct is copied. */
void model_set_bn_hook(model *m, const nn_reduce_hook *hook);

/* Which statistics batch norm normalises with in model_forward: 0 (the default) the current batch's,
 * as the reference's ContBatchNorm3d always does, updating the running estimates; 1 the running
 * estimates (PyTorch's BatchNorm3d in eval()), updating nothing, and model_backward is refused.
 * 1 suits inference on windows unlike a training batch (a batch of empty background). */
void model_set_bn_running(model *m, int running);

/* Called during model_backward each time a block's gradients are final: every gradient at arena
 * offset >= first_final (floats) will not change any more in this backward. Backward finalises
 * blocks from the last in state_dict order (out_tr) to the first (down_tr64). NULL: no calls. */
typedef int (*model_grad_ready_fn)(void *ctx, size_t first_final);
void model_set_grad_ready_hook(model *m, model_grad_ready_fn fn, void *ctx);

/* Arenas. params/grads hold model_num_params floats in state_dict order. */
size_t model_num_params(const model *m);
float *model_params(model *m);
float *model_grads(model *m);
const model_config *model_get_config(const model *m);
/* Bytes of each arena: parameters, gradients, activations (incl. conv workspace), buffers. */
size_t model_activation_bytes(const model *m);
/* What model_create(cfg) would allocate, without allocating (for memory estimates): *params and
 * *buffers floats (the gradients are another *params), *activation_bytes of the activation arena
 * (activations of cfg->batch samples and the layers' workspaces). Sets the layers' thread count as
 * model_create does. */
int model_plan(const model_config *cfg, size_t *params, size_t *buffers, size_t *activation_bytes);

/* All state_dict entries (parameters and buffers) in state_dict order. */
int model_tensor_count(const model *m);
model_tensor *model_tensor_at(model *m, int i);
/* The entry named `name`, or NULL. */
model_tensor *model_find_tensor(model *m, const char *name);

/* Per-layer profile, accumulated over forwards/backwards since the last reset. The model times
 * every layer into one profile (profile.h: events "LAYER forward" and "LAYER backward", with
 * FLOPs); a model_layer_profile is layer i's view of its two events, in forward order. flops are
 * per call with the batch of that call, summed (forward: 2 * MACs; backward: input + weight
 * gradient); calls counts forward calls. The view returned by model_layer_profile_at stays valid
 * until the next call for the same layer. */
typedef struct model_layer_profile {
    char name[48];
    double fwd_seconds, bwd_seconds;
    double fwd_flops, bwd_flops;
    long calls;
} model_layer_profile;
int model_layer_count(const model *m);
const model_layer_profile *model_layer_profile_at(const model *m, int i);
void model_profile_reset(model *m);
/* Forward FLOPs of one sample (convolutions only, 2 per multiply-add). */
double model_forward_flops_per_sample(const model *m);

/* ---- optimizers (src/model/optim.c) ------------------------------------------------------ */

enum optim_kind { OPTIM_SGD = 1, OPTIM_ADAM = 2, OPTIM_LARS = 3 };

typedef struct optim_config {
    int kind;            /* enum optim_kind */
    double lr;           /* base learning rate (the lr of a step is passed to optim_step) */
    double momentum;     /* SGD, LARS */
    double weight_decay; /* all; 0 = none (L2 added to the gradient, as PyTorch) */
    double beta1, beta2, eps; /* Adam: 0.9, 0.999, 1e-8 as PyTorch */
    double trust_coefficient; /* LARS: eta of the trust ratio, > 0 (You et al. 2017: 0.001) */
} optim_config;

/* One layer of LARS: the parameter tensor at [offset, offset + numel) of the arena. adapt = 1: the
 * update is scaled by the layer's trust ratio; 0: plain SGD momentum (batch-norm and bias
 * parameters, excluded as is usual). */
typedef struct optim_layer {
    size_t offset, numel;
    int adapt;
} optim_layer;

/* State in one arena laid out like the parameter arena: SGD and LARS momentum_buffer [n];
 * Adam exp_avg [n] then exp_avg_sq [n]. */
typedef struct optimizer {
    optim_config cfg;
    size_t n;       /* parameters */
    long step;      /* steps taken (PyTorch's `step`; SGD's buffer is created at step 0) */
    float *state;   /* one allocation: 1 (SGD, LARS, if momentum != 0) or 2 (Adam) arrays of n */
    int nstate;     /* arrays in `state` */
    optim_layer *layers; /* LARS: the layers, in arena order, covering [0, n) exactly */
    int nlayers;
} optimizer;

int optim_create(optimizer *o, const optim_config *cfg, size_t n);
void optim_free(optimizer *o);
/* LARS: the layer table (copied). The layers must tile [0, n) in order. */
int optim_set_layers(optimizer *o, const optim_layer *layers, int count);
/* LARS: the layer table of model m: one layer per parameter tensor; the batch-norm parameters
 * (module names bnN) and every bias (leaf name "bias") excluded, i.e. exactly the 1-D parameters
 * of the 3D U-Net. */
int optim_set_model_layers(optimizer *o, model *m);
/* State array k (0: momentum_buffer / exp_avg, 1: exp_avg_sq), or NULL. */
float *optim_state(optimizer *o, int k);
/* One update of params [n] from grads [n] with learning rate lr, exactly as PyTorch 1.13's
 * torch.optim.SGD (first step: buffer = gradient; no dampening, no Nesterov) or torch.optim.Adam
 * (bias-corrected, eps added after the square root), in float32.
 * LARS (You et al. 2017, in the form of NVIDIA Apex's LARC (clip off) and torchlars wrapping
 * torch.optim.SGD): per adapted layer, trust = eta ||w|| / (||g|| + wd ||w||) (1 when ||w|| or ||g||
 * is 0), d = (g + wd w) * trust, then the SGD momentum update of d with lr; excluded layers take
 * the SGD update of g + wd w. The norms are sums in double over the layer in index order, from
 * grads as given (the all-reduced gradient in training), so every rank computes the same step. */
int optim_step(optimizer *o, float *params, const float *grads, double lr);
/* "sgd", "adam", "lars" or "?". */
const char *optim_kind_name(int kind);

/* torch.optim.lr_scheduler.StepLR: base_lr * gamma^(epoch / step_size) (integer division). */
double steplr_lr(double base_lr, int step_size, double gamma, long epoch);

/* The learning-rate schedule of a run: base_lr = learning_rate * f(batch / reference_batch)
 * (lr_scaling none: f = 1; linear: f(r) = r; sqrt: f(r) = sqrt(r), Goyal et al. 2017 and Krizhevsky
 * 2014), then a linear warm-up over the first warmup_steps optimizer steps (step s = 1, 2, ... takes
 * base_lr * s / warmup_steps while s <= warmup_steps: base_lr / warmup_steps at step 1), times the
 * StepLR factor of the epoch. The warm-up position is the run's global step, so a resumed run (at
 * any number of ranks) continues the warm-up where it stopped. */
enum lr_scaling { LR_SCALING_NONE = 0, LR_SCALING_LINEAR = 1, LR_SCALING_SQRT = 2 };
typedef struct lr_schedule {
    double learning_rate; /* as configured */
    int scaling;          /* enum lr_scaling */
    long batch, reference_batch;
    double base_lr;       /* learning_rate * f(batch / reference_batch) */
    long warmup_steps;    /* 0 = none */
    int step_epochs;      /* StepLR step size, epochs */
    double gamma;         /* StepLR factor */
} lr_schedule;

int lr_schedule_init(lr_schedule *s, double learning_rate, int scaling, long batch, long reference_batch,
                     long warmup_steps, int step_epochs, double gamma);
/* The learning rate of the step taken after steps_done steps of the run, in epoch `epoch`. With
 * no scaling and no warm-up it is steplr_lr(learning_rate, ...) exactly. */
double lr_schedule_at(const lr_schedule *s, long epoch, long steps_done);
/* One line for people: the base learning rate and how it was scaled, the warm-up, StepLR. */
void lr_schedule_describe(const lr_schedule *s, char *out, size_t size);

/* ---- benchmark (src/model/bench.c) ------------------------------------------------------- */

typedef struct model_bench_options {
    int width;       /* 32 */
    int batch;       /* samples per step */
    int D, H, W;     /* 64, 64, 32 */
    int steps;       /* timed training steps after one warm-up step */
    int warmup;      /* untimed steps first (1) */
    int per_layer;   /* print the per-layer table */
    int sgemm;       /* measure OpenBLAS sgemm 2048^3 as the ceiling (at `threads` OpenBLAS threads,
                        outside the layers' OpenMP regions) */
    int threads;     /* the model's threads (model_config.threads), 1 */
    uint64_t seed;
} model_bench_options;

/* Fills the defaults above (w 32, batch 2, 64x64x32, 3 steps, 1 warm-up, table and sgemm on,
 * 1 thread). */
void model_bench_defaults(model_bench_options *o);
/* Times training steps (forward, backward, SGD) on random data and prints a report to out, ending
 * with machine-readable lines "samples_per_s: X", "step_seconds: X" (mean of the timed steps),
 * "samples_per_s_best: X", "step_seconds_best: X" (fastest step), "peak_rss_mb: X", "threads: T"
 * and, when measured, "sgemm_gflops: X" (at T threads). */
int model_bench(const model_bench_options *o, FILE *out);

#endif
