/* sim_rng.c: the simulator's only source of randomness, xoshiro256** seeded by splitmix64
 * from the seed alone, so that a seed replays bit for bit. No wall clock, no rand(). */
#include "sim.h"

#include "core/assert.h"

static uint64_t splitmix64(uint64_t *x)
{
    *x += 0x9e3779b97f4a7c15ull;
    uint64_t z = *x;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

void sim_rng_seed(struct sim_rng *r, uint64_t seed)
{
    uint64_t x = seed;
    for (int i = 0; i < 4; i++) {
        r->s[i] = splitmix64(&x);
    }
}

static uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

uint64_t sim_rng_next(struct sim_rng *r)
{
    uint64_t result = rotl(r->s[1] * 5, 7) * 9;
    uint64_t t = r->s[1] << 17;
    r->s[2] ^= r->s[0];
    r->s[3] ^= r->s[1];
    r->s[1] ^= r->s[2];
    r->s[0] ^= r->s[3];
    r->s[2] ^= t;
    r->s[3] = rotl(r->s[3], 45);
    return result;
}

uint64_t sim_rng_below(struct sim_rng *r, uint64_t bound)
{
    TRONE_ASSERT(bound > 0);
    /* Modulo bias is irrelevant for fault injection; determinism is what matters. */
    return sim_rng_next(r) % bound;
}

uint64_t sim_rng_range(struct sim_rng *r, uint64_t low, uint64_t high)
{
    TRONE_ASSERT(low <= high);
    return low + sim_rng_below(r, high - low + 1);
}

bool sim_rng_chance(struct sim_rng *r, uint32_t permille)
{
    if (permille == 0) {
        return false;
    }
    return sim_rng_below(r, 1000) < permille;
}
