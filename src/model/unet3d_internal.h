/* The UNet3D's private state, shared by its two files: src/model/unet3d_build.c (the tensor
 * table with its PyTorch names, the arenas, initialisation, accessors) and src/model/unet3d.c
 * (forward and backward). Not a public header: nothing outside src/model includes it.
 *
 * Glossary (STYLE.md): N batch, C channels, D, H, W the sizes of a level (W fastest), V = D*H*W
 * voxels per channel; level l = 0..3 has sizes D/2^l, H/2^l, W/2^l and c_l = width * 2^l channels.
 */
#ifndef GENESIS_MODEL_UNET3D_INTERNAL_H
#define GENESIS_MODEL_UNET3D_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "genesis/model.h"
#include "genesis/nn.h"
#include "genesis/profile.h"

enum {
    LUCONV_COUNT = 14,                    /* LUConvs 0..13 in forward order (unet3d.c's header) */
    TENSORS_MAX = 160,                    /* state_dict entries: 14 * 7 + 3 * 2 + 2 = 106 used */
    LAYERS_MAX = PROFILE_EVENTS_MAX / 2   /* profiled layers: 36 used */
};

/* How model_init_params fills a tensor (PyTorch's defaults). */
enum tensor_init {
    INIT_ZERO = 0,   /* BN bias, running_mean, num_batches_tracked */
    INIT_ONE = 1,    /* BN weight, running_var */
    INIT_UNIFORM = 2 /* Conv3d / ConvTranspose3d weight and bias: U(-bound, bound),
                        bound = 1/sqrt(fan_in), fan_in = weight.size(1) * k^3 */
};

/* One row of the tensor table besides its model_tensor: how it is initialised. */
struct tensor_init_rule {
    enum tensor_init init;
    double bound; /* INIT_UNIFORM only */
};

/* A layer's two profile events (ids in model.profile): its forward and its backward. */
struct layer_events {
    int forward, backward;
};

struct luconv { /* conv 3x3x3 -> batch norm (batch statistics) -> ReLU */
    int cin, cout, level;
    int t_conv_w, t_conv_b, t_bn_w, t_bn_b, t_mean, t_var; /* indices in the tensor table */
    float *xhat;   /* [N, cout, V_level]: the normalised conv output */
    float *invstd; /* [cout] */
    struct layer_events conv, bn;
};

struct upconv { /* up level d: ConvTranspose3d(k 2, s 2) from level d+1 into the concat of d */
    int cin, cout;
    int t_w, t_b;
    struct layer_events events;
};

struct model {
    model_config cfg;
    int Dl[4], Hl[4], Wl[4]; /* sizes of level l */
    size_t V[4];             /* voxels of level l */
    int c[4];                /* c_l = w * 2^l */
    struct luconv lu[LUCONV_COUNT];
    struct upconv up[3];
    int t_final_w, t_final_b;
    struct layer_events final_conv, loss, pool[3];

    /* the tensor table, in state_dict order, and the arenas its tensors view */
    model_tensor tensors[TENSORS_MAX];
    struct tensor_init_rule init[TENSORS_MAX]; /* row k: how tensor k is initialised */
    int ntensors;
    float *params, *grads; /* arenas of nparams floats */
    size_t nparams;
    float *buffers; /* BN running stats */
    size_t nbuffers;
    int64_t counters[LUCONV_COUNT]; /* num_batches_tracked */
    int ncounters;

    /* the activation arena (unet3d.c's header says what is kept and why) */
    float *acts;
    size_t act_floats;
    float *xin, *target, *out, *dout, *dxin; /* [N, 1, V0] */
    float *pool_out[3];     /* [N, 2c_l, V_{l+1}] */
    uint8_t *argmax[3];     /* same shape, bytes */
    float *level_grad[4];   /* [N, 2c_l, V_l]: the gradient flowing through level l */
    float *s_in;            /* one sample's conv input (a recomputed activation, or the concat) */
    float *s_up;            /* one sample's up-convolution input */
    float *s_dz;            /* one sample's dL/dz of an LUConv */
    float *s_dcat;          /* one sample's gradient of a concat */
    double *bn_sums;        /* 2C + 1 doubles for BN backward sums, C <= 2c_3 */
    nn_workspace ws;

    nn_reduce_hook hook;
    int bn_running; /* 1: BN normalises with the running estimates (model_set_bn_running) */
    model_grad_ready_fn grad_ready; /* NULL: nobody listens */
    void *grad_ready_ctx;
    int n_last, has_target;

    /* Timing: every layer's forward and backward (with FLOPs) are events of one profile;
     * layers[i] are the events of layer i in forward order. layer_views[i] is filled from them
     * when asked for (model_layer_profile_at); it points into layer_view_storage. */
    profile profile;
    struct layer_events layers[LAYERS_MAX];
    int nlayers;
    model_layer_profile *layer_views;
    model_layer_profile layer_view_storage[LAYERS_MAX];
};

/* The values and the gradient of tensor k of the table. */
static inline float *tensor_data(const struct model *m, int k) { return m->tensors[k].data; }
static inline float *tensor_grad(const struct model *m, int k) { return m->tensors[k].grad; }

#endif
