/* Keyed, counter-based randomness (Philox4x32-10, Salmon et al., SC'11).
 *
 * A stream is a pure function of (seed, epoch, index, purpose): the same key gives the same numbers
 * on any rank, thread or restart, and there is no global generator state anywhere in genesis.
 * `index` is a global sample index (training), a scan index (prep) or a parameter-tensor index
 * (initialisation); `epoch` is 0 where there is none (validation uses RNG_EPOCH_NONE).
 * A stream yields at least 2^32 blocks of four 32-bit words before it would repeat.
 *
 * Key domain: epoch < 2^32, index < 2^48, purpose < 2^16, any 64-bit seed. Within it, distinct
 * tuples give disjoint streams (the seed is the Philox key; epoch, index and purpose fill the
 * counter's upper 96 bits; the low counter word numbers the blocks). See src/util/rng.c.
 * An rng_stream is a small value: copy it, keep one per thread; nothing is shared.
 */
#ifndef GENESIS_RNG_H
#define GENESIS_RNG_H

#include <stddef.h>
#include <stdint.h>

enum rng_purpose {
    RNG_PURPOSE_CORRUPT = 1,   /* corruptions of one training/validation sample */
    RNG_PURPOSE_PERMUTE = 2,   /* the epoch's permutation of the training cubes */
    RNG_PURPOSE_EXTRACT = 3,   /* cube corners drawn from one scan in prep */
    RNG_PURPOSE_INIT = 4,      /* initial weights of one parameter tensor */
    RNG_PURPOSE_SPLIT = 5,     /* train/validation/test split of scans */
    RNG_PURPOSE_PHANTOM = 6,   /* synthetic phantom scans */
    RNG_PURPOSE_TEST = 7,      /* tests and benchmarks */
};

#define RNG_EPOCH_NONE UINT64_C(0xFFFFFFFF)

typedef struct rng_stream {
    uint32_t key[2];     /* Philox key */
    uint32_t counter[4]; /* counter of the next block */
    uint32_t block[4];   /* the current block of output words */
    int used;            /* words of `block` already handed out (4 = empty) */
} rng_stream;

/* The raw Philox4x32-10 bijection: out = philox(counter, key). Exposed for known-answer tests. */
void rng_philox4x32_10(uint32_t out[4], const uint32_t counter[4], const uint32_t key[2]);

void rng_stream_init(rng_stream *s, uint64_t seed, uint64_t epoch, uint64_t index,
                     enum rng_purpose purpose);
uint32_t rng_next_u32(rng_stream *s);
/* Two words, the first in the high half. */
uint64_t rng_next_u64(rng_stream *s);
/* n words, exactly the words n calls of rng_next_u32 would give (but faster). */
void rng_fill_u32(rng_stream *s, uint32_t *out, size_t n);
/* n floats, exactly what n calls of rng_uniform_float would give (but faster). */
void rng_fill_uniform_float(rng_stream *s, float *out, size_t n);
/* Uniform double in [0, 1) with 53 random bits. */
double rng_uniform(rng_stream *s);
/* Uniform float in [0, 1) with 24 random bits. */
float rng_uniform_float(rng_stream *s);
/* Uniform integer in [lo, hi], both ends included (numpy's randint(lo, hi + 1)); unbiased
 * (rejection). Returns lo when hi <= lo, drawing nothing. */
int64_t rng_randint(rng_stream *s, int64_t lo, int64_t hi);
/* Standard normal deviate (for initialisation and phantom noise): Box-Muller, four words. */
double rng_normal(rng_stream *s);

#endif
