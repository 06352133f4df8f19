/* fuzz_bench_base.c: arbitrary bytes from a "broker" into the benchmark's MQTT and NATS
 * subscriber parsers (src/cli/cmd_bench_base.c), fed in two pieces so that incomplete packets
 * and lines are kept for the next read. The first byte picks the protocol and the split point.
 * Whatever arrives, the parsers must not read out of bounds or crash; they may fail the run. */
#include "../src/cli/cmd_bench_harness.c"
#include "../src/cli/cmd_bench_proc.c"
#include "../src/cli/cmd_bench_base.c"
#include "../src/cli/cmd_spawn.c"
#include "../src/cli/cmd_common.c"

static uint8_t *fuzz_in;
static uint8_t *fuzz_out;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > BASE_IN_SIZE) {
        return 0;
    }
    if (fuzz_in == NULL) {
        fuzz_in = malloc(BASE_IN_SIZE);
        fuzz_out = malloc(BASE_OUT_FLUSH);
        if (fuzz_in == NULL || fuzz_out == NULL) {
            abort();
        }
    }
    struct evb_run *r = calloc(1, sizeof(*r));
    if (r == NULL) {
        abort();
    }
    r->pub_count = 1;
    r->sub_count = 1;
    r->size = 100;
    r->events_per_pub = 4;
    r->window = 4;
    if (evb_run_init(r) != 0) {
        abort();
    }
    struct base_client k = {.run = r, .kind = (data[0] & 1u) != 0 ? BASE_NATS : BASE_MQTT,
                            .index = 0, .publisher = false,
                            .conn = {.fd = -1, .in = fuzz_in, .out = fuzz_out,
                                     .out_cap = BASE_OUT_FLUSH}};
    size_t rest = size - 1;
    size_t first = rest > 0 ? (size_t)(data[0] >> 1) % (rest + 1) : 0;
    const uint8_t *pieces[2] = {data + 1, data + 1 + first};
    size_t sizes[2] = {first, rest - first};
    for (uint32_t p = 0; p < 2; p++) {
        size_t room = BASE_IN_SIZE - k.conn.in_used;
        size_t n = sizes[p] < room ? sizes[p] : room;
        memcpy(k.conn.in + k.conn.in_used, pieces[p], n);
        k.conn.in_used += n;
        int rc = k.kind == BASE_MQTT ? base_mqtt_input(&k) : base_nats_input(&k);
        if (rc != 0) {
            break;
        }
        if (k.conn.in_used > BASE_IN_SIZE || k.conn.out_used > k.conn.out_cap) {
            abort();
        }
    }
    evb_run_close(r);
    free(r);
    return 0;
}
