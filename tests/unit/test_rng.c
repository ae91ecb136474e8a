/* Keyed Philox4x32-10 (include/genesis/rng.h): known answers, stream layout, determinism and
 * rough uniformity of the derived distributions. */
#include "check.h"
#include "genesis/error.h"
#include "genesis/rng.h"

#include <stdint.h>
#include <string.h>

/* Random123's kat_vectors for philox4x32 with 10 rounds: counter[4], key[2] -> out[4]. */
static const struct {
    uint32_t counter[4], key[2], expected[4];
} kat[] = {
    {{0, 0, 0, 0}, {0, 0}, {0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8}},
    {{0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff},
     {0xffffffff, 0xffffffff},
     {0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd}},
    {{0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344},
     {0xa4093822, 0x299f31d0},
     {0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1}},
};

static void test_known_answers(void)
{
    for (size_t v = 0; v < sizeof kat / sizeof kat[0]; v++) {
        uint32_t out[4];
        rng_philox4x32_10(out, kat[v].counter, kat[v].key);
        for (int w = 0; w < 4; w++)
            EXPECT(out[w] == kat[v].expected[w], "vector %zu word %d: %08x, expected %08x", v, w,
                   out[w], kat[v].expected[w]);
    }
}

/* The stream is the Philox blocks of counters (n, epoch, index, purpose) under key seed. */
static void test_stream_layout(void)
{
    rng_stream s;
    uint64_t seed = UINT64_C(0x0123456789abcdef);
    rng_stream_init(&s, seed, 7, UINT64_C(0x123456789a), RNG_PURPOSE_CORRUPT);
    uint32_t key[2] = {0x89abcdef, 0x01234567};
    for (uint32_t n = 0; n < 3; n++) {
        uint32_t counter[4] = {n, 7, 0x3456789a, 0x12 | (RNG_PURPOSE_CORRUPT << 16)};
        uint32_t block[4];
        rng_philox4x32_10(block, counter, key);
        for (int w = 0; w < 4; w++) {
            uint32_t got = rng_next_u32(&s);
            EXPECT(got == block[w], "block %u word %d: %08x vs %08x", n, w, got, block[w]);
        }
    }
}

static int streams_equal(uint64_t seed1, uint64_t epoch1, uint64_t index1, enum rng_purpose p1,
                         uint64_t seed2, uint64_t epoch2, uint64_t index2, enum rng_purpose p2)
{
    rng_stream a, b;
    rng_stream_init(&a, seed1, epoch1, index1, p1);
    rng_stream_init(&b, seed2, epoch2, index2, p2);
    int same = 0;
    for (int i = 0; i < 64; i++) same += rng_next_u32(&a) == rng_next_u32(&b);
    return same == 64;
}

static void test_determinism(void)
{
    EXPECT(streams_equal(42, 3, 1000, RNG_PURPOSE_CORRUPT, 42, 3, 1000, RNG_PURPOSE_CORRUPT),
           "the same key must give the same stream");
    EXPECT(!streams_equal(42, 3, 1000, RNG_PURPOSE_CORRUPT, 43, 3, 1000, RNG_PURPOSE_CORRUPT),
           "seed must change the stream");
    EXPECT(!streams_equal(42, 3, 1000, RNG_PURPOSE_CORRUPT, 42, 4, 1000, RNG_PURPOSE_CORRUPT),
           "epoch must change the stream");
    EXPECT(!streams_equal(42, 3, 1000, RNG_PURPOSE_CORRUPT, 42, RNG_EPOCH_NONE, 1000,
                          RNG_PURPOSE_CORRUPT),
           "validation epoch must differ from training epochs");
    EXPECT(!streams_equal(42, 3, 1000, RNG_PURPOSE_CORRUPT, 42, 3, 1001, RNG_PURPOSE_CORRUPT),
           "index must change the stream");
    EXPECT(!streams_equal(42, 3, 1000, RNG_PURPOSE_CORRUPT, 42, 3, 1000, RNG_PURPOSE_PERMUTE),
           "purpose must change the stream");
    EXPECT(!streams_equal(42, 3, UINT64_C(1) << 32, RNG_PURPOSE_CORRUPT, 42, 3, 0,
                          RNG_PURPOSE_CORRUPT),
           "index bits above 32 must change the stream");
    /* Swapping epoch and index must not alias. */
    EXPECT(!streams_equal(42, 5, 9, RNG_PURPOSE_CORRUPT, 42, 9, 5, RNG_PURPOSE_CORRUPT),
           "epoch and index must not be interchangeable");
}

/* |observed - n p| <= 4 sigma of a binomial(n, p). */
static int within_4_sigma(long observed, long n, double p)
{
    double mean = n * p, sigma = sqrt(n * p * (1 - p));
    return fabs((double)observed - mean) <= 4 * sigma;
}

static void test_distributions(void)
{
    rng_stream s;
    rng_stream_init(&s, 2024, 0, 0, RNG_PURPOSE_TEST);
    enum { N = 200000, BINS = 16 };
    long bins[BINS] = {0}, fbins[BINS] = {0};
    double sum = 0;
    int out_of_range = 0;
    for (int i = 0; i < N; i++) {
        double u = rng_uniform(&s);
        float f = rng_uniform_float(&s);
        if (!(u >= 0 && u < 1) || !(f >= 0 && f < 1)) out_of_range++;
        bins[(int)(u * BINS)]++;
        fbins[(int)(f * BINS)]++;
        sum += u;
    }
    EXPECT(out_of_range == 0, "%d uniforms outside [0, 1)", out_of_range);
    for (int b = 0; b < BINS; b++) {
        EXPECT(within_4_sigma(bins[b], N, 1.0 / BINS), "uniform bin %d: %ld of %d", b, bins[b], N);
        EXPECT(within_4_sigma(fbins[b], N, 1.0 / BINS), "float bin %d: %ld of %d", b, fbins[b],
               N);
    }
    EXPECT_NEAR(sum / N, 0.5, 4 * sqrt(1.0 / 12 / N), "uniform mean");

    /* 53 bits: the low bits of u * 2^53 must not all be zero. */
    int low_bits = 0;
    for (int i = 0; i < 64; i++) {
        double u = rng_uniform(&s) * 9007199254740992.0;
        low_bits |= (int)fmod(u, 2.0);
    }
    EXPECT(low_bits == 1, "rng_uniform must use 53 bits");

    /* randint: both ends included, every value equally likely, including awkward ranges. */
    const int64_t ranges[][2] = {{1, 6}, {0, 2}, {-3, 3}, {3, 64 - 6 - 3}, {0, 999999999}};
    for (size_t r = 0; r < sizeof ranges / sizeof ranges[0]; r++) {
        int64_t lo = ranges[r][0], hi = ranges[r][1];
        int64_t span = hi - lo + 1;
        int nb = span < 64 ? (int)span : 64;
        long counts[64] = {0};
        int bad = 0;
        for (int i = 0; i < N; i++) {
            int64_t v = rng_randint(&s, lo, hi);
            if (v < lo || v > hi) bad++;
            else counts[(v - lo) * nb / span]++;
        }
        EXPECT(bad == 0, "randint(%lld, %lld): %d values out of range", (long long)lo,
               (long long)hi, bad);
        for (int b = 0; b < nb; b++)
            EXPECT(within_4_sigma(counts[b], N, 1.0 / nb), "randint(%lld, %lld) bin %d: %ld",
                   (long long)lo, (long long)hi, b, counts[b]);
    }
    /* A range just over 2^32 wide and a 2^63-wide one stay in range. */
    int bad = 0, high_half = 0;
    for (int i = 0; i < 1000; i++) {
        int64_t v = rng_randint(&s, -(INT64_C(1) << 40), INT64_C(1) << 40);
        bad += v < -(INT64_C(1) << 40) || v > (INT64_C(1) << 40);
        int64_t w = rng_randint(&s, 0, INT64_MAX);
        bad += w < 0;
        high_half += w > INT64_MAX / 2;
    }
    EXPECT(bad == 0, "wide randint out of range %d times", bad);
    EXPECT(within_4_sigma(high_half, 1000, 0.5), "randint(0, INT64_MAX) upper half %d/1000",
           high_half);
    EXPECT(rng_randint(&s, 5, 5) == 5, "randint(5, 5)");
    int64_t full = rng_randint(&s, INT64_MIN, INT64_MAX);
    (void)full; /* any value is valid; it must simply not hang or trap */

    /* Normal deviates: mean 0, variance 1, roughly 68% within one sigma. */
    double ns = 0, ns2 = 0;
    long inside = 0;
    for (int i = 0; i < N; i++) {
        double z = rng_normal(&s);
        ns += z;
        ns2 += z * z;
        inside += fabs(z) < 1.0;
    }
    EXPECT_NEAR(ns / N, 0.0, 4 / sqrt(N), "normal mean");
    EXPECT_NEAR(ns2 / N, 1.0, 4 * sqrt(2.0 / N), "normal variance");
    EXPECT(within_4_sigma(inside, N, 0.6826894921370859), "normal within 1 sigma: %ld of %d",
           inside, N);
}

int main(void)
{
    test_known_answers();
    test_stream_layout();
    test_determinism();
    test_distributions();
    TEST_MAIN_END();
}
