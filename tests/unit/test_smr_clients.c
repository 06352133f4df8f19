/* test_smr_clients.c: the reply table of the replica core (src/smr/smr_request.c,
 * docs/PROTOCOL.md 4) driven through the real core (one CFT replica, which decides alone):
 * several processes sharing one client key, each with its own increasing ids, get every
 * request executed exactly once in whatever order the ids arrive; a retransmission gets the
 * result it had; an id two processes chose with different operations is refused, never
 * answered with the other's result; old ids become stale only after SMR_CLIENT_RECENT newer
 * ones; the results kept per key are bounded; and a restarted replica restores the table
 * from its checkpoint. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "smr/smr.h"
#include "smr/smr_internal.h"
#include "smr/smr_msg.h"
#include "smr/smr_sig.h"

/* The application: counts executions per operation; the result names the operation and its
 * count ("op#n"), or is big (100 KiB) for operations starting with "big". */
#define APP_OPS_MAX 64u

struct app {
    char ops[APP_OPS_MAX][32];
    uint32_t counts[APP_OPS_MAX];
    uint32_t op_count;
};

static void app_execute(void *ctx, uint64_t seq, const uint8_t client[TRONE_KEY_LEN],
                        const uint8_t *op, size_t op_size, struct buf *result)
{
    (void)seq;
    (void)client;
    struct app *a = ctx;
    char name[32];
    snprintf(name, sizeof(name), "%.*s", (int)op_size, (const char *)op);
    uint32_t i = 0;
    while (i < a->op_count && strcmp(a->ops[i], name) != 0) {
        i++;
    }
    if (i == a->op_count) {
        assert_true(a->op_count < APP_OPS_MAX);
        snprintf(a->ops[a->op_count++], sizeof(a->ops[0]), "%s", name);
    }
    a->counts[i]++;
    char text[64];
    int length = snprintf(text, sizeof(text), "%s#%u", name, a->counts[i]);
    buf_put_bytes(result, text, (size_t)length);
    if (strncmp(name, "big", 3) == 0) {
        static uint8_t filler[100 * 1024];
        buf_put_bytes(result, filler, sizeof(filler));
    }
}

static int app_snapshot(void *ctx, struct buf *out)
{
    (void)ctx;
    buf_put_u32(out, 0);
    return out->error;
}

static int app_restore(void *ctx, const uint8_t *data, size_t size)
{
    (void)ctx;
    (void)data;
    return size == 4 ? 0 : TRONE_ECORRUPT;
}

static uint32_t app_count(const struct app *a, const char *name)
{
    for (uint32_t i = 0; i < a->op_count; i++) {
        if (strcmp(a->ops[i], name) == 0) {
            return a->counts[i];
        }
    }
    return 0;
}

/* ---- Fixture: one replica, one client key ---- */

struct fixture {
    struct app app;
    struct smr_app smr_app;
    struct smr_config config;
    struct smr *core;
    uint8_t client_pk[TRONE_KEY_LEN];
    uint8_t client_sk[TRONE_SECRET_KEY_LEN];
    uint64_t now_ms;
    /* The last reply to the client and the newest stable checkpoint record. */
    bool replied;
    int32_t status;
    char result[64];
    size_t result_size;
    struct buf stable;
};

static void take_output(struct fixture *f, const struct smr_output *out)
{
    for (size_t i = 0; i < out->envelope_count; i++) {
        const struct smr_envelope *e = &out->envelopes[i];
        if (e->dest != SMR_DEST_CLIENT) {
            continue;
        }
        struct smr_reply r;
        assert_int_equal(smr_msg_decode_reply(e->data, e->size, &r), 0);
        f->replied = true;
        f->status = r.status;
        f->result_size = r.result_size;
        size_t text = 0; /* the "op#n" text; a big result's filler starts with a zero byte */
        while (text < r.result_size && text < sizeof(f->result) - 1 && r.result[text] != 0) {
            text++;
        }
        memcpy(f->result, r.result, text);
        f->result[text] = '\0';
    }
    for (size_t i = 0; i < out->record_count; i++) {
        const struct smr_record *rec = &out->records[i];
        if (rec->kind == SMR_RECORD_STABLE && !rec->drop) {
            buf_reset(&f->stable);
            buf_put_bytes(&f->stable, rec->data, rec->size);
        }
    }
}

static struct smr *core_make(struct fixture *f)
{
    struct smr *core = smr_create(&f->config, &f->smr_app);
    assert_non_null(core);
    return core;
}

static int setup(void **state)
{
    assert_true(sodium_init() >= 0);
    struct fixture *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    f->smr_app = (struct smr_app){.ctx = &f->app,
                                  .execute = app_execute,
                                  .snapshot = app_snapshot,
                                  .restore = app_restore};
    smr_config_defaults(&f->config);
    f->config.replica_count = 1;
    f->config.fault_count = 0;
    f->config.model = SMR_CFT;
    f->config.self = 0;
    f->config.checkpoint_interval = 4;
    f->config.window = 16;
    f->config.pipeline_max = 4;
    crypto_sign_keypair(f->config.replica_keys[0], f->config.secret_key);
    crypto_sign_keypair(f->client_pk, f->client_sk);
    buf_init(&f->stable, 64u * 1024 * 1024);
    f->now_ms = 1000;
    f->core = core_make(f);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    smr_destroy(f->core);
    buf_close(&f->stable);
    free(f);
    return 0;
}

/* Sends REQUEST(id, op) of the fixture's key; returns the reply's status (the result is in
 * f->result). A replica that decides alone replies within the step. */
static int32_t request(struct fixture *f, uint64_t id, const char *op)
{
    struct smr_request m = {.request_id = id, .op = (const uint8_t *)op,
                            .op_size = (uint32_t)strlen(op)};
    memcpy(m.client, f->client_pk, TRONE_KEY_LEN);
    smr_sign_request(&m, f->client_sk);
    struct buf b;
    buf_init(&b, TRONE_MESSAGE_MAX);
    smr_msg_encode_request(&b, &m);
    assert_int_equal(b.error, 0);
    f->replied = false;
    struct smr_input in = {.now_ms = ++f->now_ms, .kind = SMR_IN_CLIENT, .client = f->client_pk,
                           .data = b.data, .size = b.used};
    const struct smr_output *out = NULL;
    assert_int_equal(smr_step(f->core, &in, &out), 0);
    take_output(f, out);
    buf_close(&b);
    assert_true(f->replied);
    return f->status;
}

/* count requests with ids first.. and ops "<prefix>0", "<prefix>1", ..., each executed. */
static void requests_ok(struct fixture *f, uint64_t first, char prefix, uint64_t count)
{
    for (uint64_t k = 0; k < count; k++) {
        char op[24]; /* a prefix and any u64 */
        snprintf(op, sizeof(op), "%c%llu", prefix, (unsigned long long)k);
        assert_int_equal(request(f, first + k, op), 0);
    }
}

/* Two processes of one key: the later id executes first, the earlier one still executes (it
 * was TRONE_ESTALE before), each once; retransmissions get their own results. */
static void test_interleaved_processes(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(request(f, 2000, "b1"), 0);
    assert_string_equal(f->result, "b1#1");
    assert_int_equal(request(f, 1000, "a1"), 0);
    assert_string_equal(f->result, "a1#1");
    assert_int_equal(request(f, 1000, "a1"), 0); /* retransmission: cached, not executed */
    assert_string_equal(f->result, "a1#1");
    assert_int_equal(request(f, 2000, "b1"), 0);
    assert_string_equal(f->result, "b1#1");
    assert_int_equal(request(f, 1001, "a2"), 0);
    assert_int_equal(request(f, 2001, "b2"), 0);
    assert_int_equal(app_count(&f->app, "a1"), 1);
    assert_int_equal(app_count(&f->app, "b1"), 1);
    assert_int_equal(app_count(&f->app, "a2"), 1);
    assert_int_equal(app_count(&f->app, "b2"), 1);
}

/* One id chosen by two processes with different operations: the second is refused, never
 * given the first's result, and not executed. */
static void test_colliding_id(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(request(f, 5000, "first"), 0);
    assert_int_equal(request(f, 5000, "other"), TRONE_ESTALE);
    assert_int_equal(f->result_size, 0);
    assert_int_equal(app_count(&f->app, "other"), 0);
    assert_int_equal(request(f, 5000, "first"), 0);
    assert_string_equal(f->result, "first#1");
}

/* After SMR_CLIENT_RECENT newer executions an id is stale (at most once, with bounded
 * memory); an id above the new low that never ran still executes. */
static void test_old_ids_go_stale(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(request(f, 1000, "a1"), 0);
    assert_int_equal(request(f, 2000, "b1"), 0);
    requests_ok(f, 3000, 'c', SMR_CLIENT_RECENT);
    /* 18 executed, 16 remembered: 1000 and 2000 were forgotten, low is 2000. */
    assert_int_equal(request(f, 1000, "a1"), TRONE_ESTALE);
    assert_int_equal(request(f, 1500, "late"), TRONE_ESTALE);
    assert_int_equal(app_count(&f->app, "a1"), 1);
    assert_int_equal(app_count(&f->app, "late"), 0);
    assert_int_equal(request(f, 2500, "between"), 0);
    assert_string_equal(f->result, "between#1");
    /* 2500 was the smallest of 17: executed, answered once, and stale from now on. */
    assert_int_equal(request(f, 2500, "between"), TRONE_ESTALE);
    assert_int_equal(app_count(&f->app, "between"), 1);
    assert_int_equal(request(f, 3005, "c5"), 0);
    assert_string_equal(f->result, "c5#1");
}

/* The results kept per key stay within TRONE_RESULT_MAX in all: the oldest big results are
 * dropped (their retransmissions are told TRONE_ESTALE), the newest is kept. */
static void test_results_bounded(void **state)
{
    struct fixture *f = *state;
    for (uint64_t k = 0; k < 4; k++) {
        char op[16];
        snprintf(op, sizeof(op), "big%llu", (unsigned long long)k);
        assert_int_equal(request(f, 100 + k, op), 0);
        assert_true(f->result_size > 100 * 1024);
    }
    assert_int_equal(request(f, 100, "big0"), TRONE_ESTALE);
    assert_int_equal(request(f, 103, "big3"), 0);
    assert_string_equal(f->result, "big3#1");
    assert_int_equal(app_count(&f->app, "big0"), 1);
    const struct smr_client_entry *e = smr__client_find(f->core, f->client_pk);
    assert_non_null(e);
    size_t kept = 0;
    for (uint32_t k = 0; k < SMR_CLIENT_RECENT; k++) {
        kept += e->done[k].kept ? e->done[k].result.used : 0;
    }
    assert_true(kept <= TRONE_RESULT_MAX);
}

/* A replica restarted from its stable checkpoint has the same table: retransmissions get the
 * results they had, old ids are still stale, and nothing runs twice. */
static void test_table_survives_restart(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(request(f, 2000, "b1"), 0);
    assert_int_equal(request(f, 1000, "a1"), 0);
    requests_ok(f, 3000, 'c', SMR_CLIENT_RECENT);
    /* 18 requests, one per seq, a checkpoint every 4: two more make seq 20 stable. */
    requests_ok(f, 4000, 'd', 2);
    assert_true(f->stable.used > 0);
    smr_destroy(f->core);
    memset(&f->app, 0, sizeof(f->app));
    f->core = core_make(f);
    assert_int_equal(smr_restore(f->core, SMR_RECORD_STABLE, 0, f->stable.data, f->stable.used),
                     0);
    const struct smr_output *out = NULL;
    assert_int_equal(smr_restore_finish(f->core, ++f->now_ms, &out), 0);
    assert_int_equal(request(f, 4001, "d1"), 0);
    assert_string_equal(f->result, "d1#1");
    assert_int_equal(app_count(&f->app, "d1"), 0); /* from the restored table */
    assert_int_equal(request(f, 1000, "a1"), TRONE_ESTALE);
    assert_int_equal(request(f, 3015, "c15"), 0);
    assert_string_equal(f->result, "c15#1");
    assert_int_equal(app_count(&f->app, "c15"), 0); /* from the table, not executed again */
    assert_int_equal(request(f, 4002, "d2"), 0);
    assert_string_equal(f->result, "d2#1");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_interleaved_processes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_colliding_id, setup, teardown),
        cmocka_unit_test_setup_teardown(test_old_ids_go_stale, setup, teardown),
        cmocka_unit_test_setup_teardown(test_results_bounded, setup, teardown),
        cmocka_unit_test_setup_teardown(test_table_survives_restart, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
