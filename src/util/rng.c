/* Keyed, counter-based randomness: Philox4x32-10 (Salmon, Moraes, Dror, Shaw, SC'11).
 *
 * Stream layout (include/genesis/rng.h). A stream is a pure function of its key tuple:
 *   key[0], key[1]   = seed (low 32 bits, high 32 bits)
 *   counter[0]       = block number within the stream: 0, 1, 2, ... (2^32 blocks per stream)
 *   counter[1]       = epoch (32 bits; RNG_EPOCH_NONE = 0xFFFFFFFF)
 *   counter[2]       = index, low 32 bits
 *   counter[3]       = index bits 32..47 | purpose << 16 (purpose in 16 bits)
 * Within the domain (epoch < 2^32, index < 2^48, purpose < 2^16) distinct tuples give distinct
 * (key, counter) pairs, and since Philox is a bijection of the counter for each key, streams never
 * share a block. Bits outside the domain are XOR-folded into the same words (so they still change
 * the stream) but distinctness is then no longer guaranteed.
 */
#include "genesis/rng.h"

#include <math.h>

enum {
    PHILOX_M0 = 0xD2511F53u, /* round multipliers */
    PHILOX_M1 = 0xCD9E8D57u,
    PHILOX_W0 = 0x9E3779B9u, /* key schedule (Weyl) increments */
    PHILOX_W1 = 0xBB67AE85u,
};

static inline void philox_round(uint32_t x[4], const uint32_t k[2])
{
    uint64_t p0 = (uint64_t)PHILOX_M0 * x[0];
    uint64_t p1 = (uint64_t)PHILOX_M1 * x[2];
    uint32_t hi0 = (uint32_t)(p0 >> 32), lo0 = (uint32_t)p0;
    uint32_t hi1 = (uint32_t)(p1 >> 32), lo1 = (uint32_t)p1;
    uint32_t y0 = hi1 ^ x[1] ^ k[0];
    uint32_t y2 = hi0 ^ x[3] ^ k[1];
    x[0] = y0;
    x[1] = lo1;
    x[2] = y2;
    x[3] = lo0;
}

void rng_philox4x32_10(uint32_t out[4], const uint32_t counter[4], const uint32_t key[2])
{
    uint32_t x[4] = {counter[0], counter[1], counter[2], counter[3]};
    uint32_t k[2] = {key[0], key[1]};
    for (int round = 0; round < 10; round++) {
        if (round > 0) {
            k[0] += PHILOX_W0;
            k[1] += PHILOX_W1;
        }
        philox_round(x, k);
    }
    out[0] = x[0];
    out[1] = x[1];
    out[2] = x[2];
    out[3] = x[3];
}

void rng_stream_init(rng_stream *s, uint64_t seed, uint64_t epoch, uint64_t index,
                     enum rng_purpose purpose)
{
    uint64_t p = (uint64_t)purpose;
    s->key[0] = (uint32_t)seed;
    s->key[1] = (uint32_t)(seed >> 32);
    s->counter[0] = 0;
    s->counter[1] = (uint32_t)epoch ^ (uint32_t)(epoch >> 32);
    s->counter[2] = (uint32_t)index ^ (uint32_t)(index >> 48);
    s->counter[3] = (uint32_t)((index >> 32) & 0xFFFFu) ^ (uint32_t)(p << 16) ^
                    (uint32_t)(p >> 16);
    s->block[0] = s->block[1] = s->block[2] = s->block[3] = 0;
    s->used = 4;
}

static inline void refill(rng_stream *s)
{
    rng_philox4x32_10(s->block, s->counter, s->key);
    s->counter[0]++; /* wraps after 2^32 blocks: the stream's documented length */
    s->used = 0;
}

uint32_t rng_next_u32(rng_stream *s)
{
    if (s->used >= 4) refill(s);
    return s->block[s->used++];
}

uint64_t rng_next_u64(rng_stream *s)
{
    uint64_t hi = rng_next_u32(s);
    uint64_t lo = rng_next_u32(s);
    return (hi << 32) | lo;
}

void rng_fill_u32(rng_stream *s, uint32_t *out, size_t n)
{
    size_t i = 0;
    while (i < n && s->used < 4) out[i++] = s->block[s->used++];
    for (; n - i >= 4; i += 4) { /* whole blocks straight into out; the buffer stays empty */
        rng_philox4x32_10(out + i, s->counter, s->key);
        s->counter[0]++;
    }
    while (i < n) out[i++] = rng_next_u32(s);
}

void rng_fill_uniform_float(rng_stream *s, float *out, size_t n)
{
    uint32_t words[256];
    for (size_t done = 0; done < n;) {
        size_t chunk = n - done < 256 ? n - done : 256;
        rng_fill_u32(s, words, chunk);
        for (size_t i = 0; i < chunk; i++)
            out[done + i] = (float)(words[i] >> 8) * (1.0f / 16777216.0f);
        done += chunk;
    }
}

double rng_uniform(rng_stream *s)
{
    uint32_t a = rng_next_u32(s) >> 5; /* 27 bits */
    uint32_t b = rng_next_u32(s) >> 6; /* 26 bits */
    return ((double)a * 67108864.0 + (double)b) * (1.0 / 9007199254740992.0);
}

float rng_uniform_float(rng_stream *s)
{
    return (float)(rng_next_u32(s) >> 8) * (1.0f / 16777216.0f);
}

/* Uniform in [0, range) for 1 <= range <= 2^32, unbiased (Lemire's multiply-shift with
 * rejection of the short first interval). */
static uint32_t bounded_u32(rng_stream *s, uint64_t range)
{
    uint64_t m = (uint64_t)rng_next_u32(s) * range;
    uint32_t low = (uint32_t)m;
    if (low < range) {
        uint32_t threshold = (uint32_t)((UINT64_C(1) << 32) % range);
        while (low < threshold) {
            m = (uint64_t)rng_next_u32(s) * range;
            low = (uint32_t)m;
        }
    }
    return (uint32_t)(m >> 32);
}

int64_t rng_randint(rng_stream *s, int64_t lo, int64_t hi)
{
    if (hi <= lo) return lo; /* empty or single-value range: callers check ranges beforehand */
    uint64_t range = (uint64_t)hi - (uint64_t)lo + 1; /* 0 means the full 2^64 range */
    uint64_t offset;
    if (range != 0 && range <= (UINT64_C(1) << 32)) {
        offset = bounded_u32(s, range);
    } else if (range == 0) {
        offset = rng_next_u64(s);
    } else {
        /* rejection on the top multiple of range below 2^64 */
        uint64_t threshold = (0 - range) % range; /* 2^64 mod range */
        uint64_t x;
        do x = rng_next_u64(s);
        while (x < threshold);
        offset = x % range;
    }
    return (int64_t)((uint64_t)lo + offset);
}

double rng_normal(rng_stream *s)
{
    /* Box-Muller, one deviate per call (the second is discarded so that every call consumes a
     * fixed four words and the stream stays a pure function of the call sequence). */
    double u1 = 1.0 - rng_uniform(s); /* (0, 1] so the log is finite */
    double u2 = rng_uniform(s);
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586476925 * u2);
}
