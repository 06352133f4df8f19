/* test_rt_msg.c: the runtime status query/answer codec (rt_msg.h), the runtime's small pure
 * helpers (the log rate limiter of rt_conn.h, the --timeout parser of rt_ctl.h), and one
 * loopback scenario: four real replicas (rt_replica_run, one thread each) and real clients
 * (rt_client) over TCP and Noise in this process. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "broker/brk_op.h"
#include "rt/rt_client.h"
#include "rt/rt_conn.h"
#include "rt/rt_ctl.h"
#include "rt/rt_msg.h"
#include "rt/rt_replica.h"

/* ---- Fixture ---- */

static struct rt_status sample_status(void)
{
    struct rt_status st;
    memset(&st, 0, sizeof(st));
    st.replica = 2;
    st.view = UINT64_C(0x0102030405060708);
    st.leader = 1;
    st.view_changing = true;
    st.executed = UINT64_C(0xfffffffffffffffe);
    st.checkpoint = 64;
    for (size_t i = 0; i < TRONE_HASH_LEN; i++) {
        st.digest[i] = (uint8_t)(0xa0 + i);
    }
    st.peers = (UINT64_C(1) << 0) | (UINT64_C(1) << 1) | (UINT64_C(1) << 3);
    st.durable_events = 123456789;
    st.durable_fetched = 1000;
    st.durable_served = UINT64_MAX;
    return st;
}

/* ---- Helpers ---- */

static void encode_answer(const struct rt_status *st, struct buf *out)
{
    buf_init(out, 0);
    rt_msg_encode_status_answer(out, st);
    assert_int_equal(out->error, 0);
    assert_int_equal(out->used, RT_MSG_STATUS_ANSWER_SIZE);
}

/* Decodes bytes that must be refused, and checks the output was zeroed. */
static void answer_bad(const uint8_t *data, size_t size)
{
    struct rt_status st;
    memset(&st, 0x5a, sizeof(st));
    assert_int_equal(rt_msg_decode_status_answer(data, size, &st), TRONE_EBADMSG);
    struct rt_status zero;
    memset(&zero, 0, sizeof(zero));
    assert_memory_equal(&st, &zero, sizeof(st));
}

/* ---- Scenarios ---- */

/* An answer decodes to exactly what was encoded, extreme values included. */
static void test_answer_round_trip(void **state)
{
    (void)state;
    struct rt_status in = sample_status();
    struct buf b;
    encode_answer(&in, &b);
    assert_int_equal(rt_msg_type(b.data, b.used), RT_MSG_STATUS_ANSWER);
    struct rt_status out;
    assert_int_equal(rt_msg_decode_status_answer(b.data, b.used, &out), 0);
    assert_int_equal(out.replica, in.replica);
    assert_true(out.view == in.view);
    assert_int_equal(out.leader, in.leader);
    assert_true(out.view_changing);
    assert_true(out.executed == in.executed);
    assert_true(out.checkpoint == in.checkpoint);
    assert_memory_equal(out.digest, in.digest, TRONE_HASH_LEN);
    assert_true(out.peers == in.peers);
    assert_true(out.durable_events == in.durable_events);
    assert_true(out.durable_fetched == in.durable_fetched);
    assert_true(out.durable_served == in.durable_served);
    buf_close(&b);
}

/* The layout is pinned: type, then little-endian fields in the documented order. */
static void test_answer_layout(void **state)
{
    (void)state;
    struct rt_status in = sample_status();
    struct buf b;
    encode_answer(&in, &b);
    const uint8_t *p = b.data;
    assert_int_equal(p[0], 33);
    assert_int_equal(buf_load_u32(p + 1), 2);
    assert_true(buf_load_u64(p + 5) == in.view);
    assert_int_equal(p[5], 0x08); /* least significant byte first */
    assert_int_equal(buf_load_u32(p + 13), 1);
    assert_int_equal(p[17], 1);
    assert_true(buf_load_u64(p + 18) == in.executed);
    assert_true(buf_load_u64(p + 26) == 64);
    assert_memory_equal(p + 34, in.digest, TRONE_HASH_LEN);
    assert_true(buf_load_u64(p + 66) == in.peers);
    assert_true(buf_load_u64(p + 74) == in.durable_events);
    assert_true(buf_load_u64(p + 82) == in.durable_fetched);
    assert_true(buf_load_u64(p + 90) == in.durable_served);
    buf_close(&b);
}

/* Every truncation and any trailing byte is refused. */
static void test_answer_lengths(void **state)
{
    (void)state;
    struct rt_status in = sample_status();
    struct buf b;
    encode_answer(&in, &b);
    for (size_t size = 0; size < b.used; size++) {
        answer_bad(b.data, size);
    }
    uint8_t longer[RT_MSG_STATUS_ANSWER_SIZE + 1];
    memcpy(longer, b.data, b.used);
    longer[b.used] = 0;
    answer_bad(longer, sizeof(longer));
    answer_bad(NULL, 0);
    buf_close(&b);
}

/* Out-of-range fields are refused: type, ids, the view_changing flag and the peers mask. */
static void test_answer_ranges(void **state)
{
    (void)state;
    struct rt_status in = sample_status();
    struct buf b;
    encode_answer(&in, &b);
    uint8_t m[RT_MSG_STATUS_ANSWER_SIZE];
    struct {
        size_t offset;
        uint8_t value;
    } cases[] = {
        {0, 32},                              /* a query's type */
        {0, 9},                               /* an smr message type */
        {1, TRONE_REPLICAS_MAX},              /* replica id */
        {4, 1},                               /* replica id high byte */
        {13, TRONE_REPLICAS_MAX},             /* leader */
        {17, 2},                              /* view_changing must be 0 or 1 */
        {66, 0x0f},                           /* peers includes the replica itself (bit 2) */
        {67, 1u << (TRONE_REPLICAS_MAX - 8)}, /* a peer beyond the replica range */
        {73, 0x80},                           /* bit 63 */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        memcpy(m, b.data, sizeof(m));
        m[cases[i].offset] = cases[i].value;
        answer_bad(m, sizeof(m));
    }
    /* The largest legal ids decode. */
    memcpy(m, b.data, sizeof(m));
    m[1] = TRONE_REPLICAS_MAX - 1;
    m[13] = TRONE_REPLICAS_MAX - 1;
    m[17] = 0;
    struct rt_status out;
    assert_int_equal(rt_msg_decode_status_answer(m, sizeof(m), &out), 0);
    assert_int_equal(out.replica, TRONE_REPLICAS_MAX - 1);
    assert_false(out.view_changing);
    buf_close(&b);
}

/* The query is exactly one byte; anything else is refused. */
static void test_query(void **state)
{
    (void)state;
    struct buf b;
    buf_init(&b, 0);
    rt_msg_encode_status_query(&b);
    assert_int_equal(b.used, 1);
    assert_int_equal(rt_msg_type(b.data, b.used), RT_MSG_STATUS_QUERY);
    assert_int_equal(rt_msg_decode_status_query(b.data, b.used), 0);
    const uint8_t trailing[] = {32, 0};
    const uint8_t answer_type[] = {33};
    assert_int_equal(rt_msg_decode_status_query(trailing, sizeof(trailing)), TRONE_EBADMSG);
    assert_int_equal(rt_msg_decode_status_query(answer_type, 1), TRONE_EBADMSG);
    assert_int_equal(rt_msg_decode_status_query(b.data, 0), TRONE_EBADMSG);
    assert_int_equal(rt_msg_decode_status_query(NULL, 0), TRONE_EBADMSG);
    buf_close(&b);
}

/* Protocol messages (smr types 1..12) and other bytes are not runtime messages. */
static void test_type(void **state)
{
    (void)state;
    for (int t = 0; t < 256; t++) {
        uint8_t byte = (uint8_t)t;
        int want = (t == 32 || t == 33) ? t : 0;
        assert_int_equal(rt_msg_type(&byte, 1), want);
    }
    assert_int_equal(rt_msg_type(NULL, 0), 0);
}

/* The rate limiter lets a burst through per window and counts what it dropped. */
static void test_ratelimit(void **state)
{
    (void)state;
    struct rt_ratelimit r;
    memset(&r, 0, sizeof(r));
    uint32_t suppressed = 99;
    for (int i = 0; i < 3; i++) {
        assert_true(rt_ratelimit_allow(&r, 1000, 3, 100, &suppressed));
        assert_int_equal(suppressed, 0);
    }
    assert_false(rt_ratelimit_allow(&r, 1050, 3, 100, NULL));
    assert_false(rt_ratelimit_allow(&r, 1099, 3, 100, NULL));
    assert_true(rt_ratelimit_allow(&r, 1100, 3, 100, &suppressed));
    assert_int_equal(suppressed, 2);
    /* A clock that goes backwards starts a new window instead of blocking forever. */
    assert_true(rt_ratelimit_allow(&r, 10, 3, 100, &suppressed));
}

/* --timeout takes positive seconds, fractions allowed, at most a day. */
static void test_seconds(void **state)
{
    (void)state;
    uint64_t ms = 7;
    assert_int_equal(rt_ctl_seconds_parse("20", &ms), 0);
    assert_true(ms == 20000);
    assert_int_equal(rt_ctl_seconds_parse("0.25", &ms), 0);
    assert_true(ms == 250);
    assert_int_equal(rt_ctl_seconds_parse("0.0001", &ms), 0);
    assert_true(ms == 1);
    const char *bad[] = {"", "0", "-1", "abc", "5s", "nan", "inf", "86401", " ", "1e400"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ms = 7;
        assert_int_equal(rt_ctl_seconds_parse(bad[i], &ms), TRONE_EINVAL);
        assert_true(ms == 7);
    }
    assert_int_equal(rt_ctl_seconds_parse(NULL, &ms), TRONE_EINVAL);
}

/* ---- Loopback cluster ---- */

#define LOOP_N 4u
/* Bounded polling: each status round waits at most its own timeout. */
#define LOOP_ROUNDS 100

struct loop_replica {
    pthread_t thread;
    struct rt_replica_config config;
    int rc;
    char errmsg[256];
};

static void *loop_replica_main(void *arg)
{
    struct loop_replica *r = arg;
    r->rc = rt_replica_run(&r->config, r->errmsg, sizeof(r->errmsg));
    return NULL;
}

/* Picks LOOP_N free loopback ports by binding to port 0 (all held until every one is known). */
static void loop_ports(uint16_t ports[LOOP_N])
{
    int fds[LOOP_N];
    for (uint32_t i = 0; i < LOOP_N; i++) {
        fds[i] = socket(AF_INET, SOCK_STREAM, 0);
        assert_true(fds[i] >= 0);
        struct sockaddr_in a;
        memset(&a, 0, sizeof(a));
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        assert_int_equal(bind(fds[i], (struct sockaddr *)&a, sizeof(a)), 0);
        socklen_t len = sizeof(a);
        assert_int_equal(getsockname(fds[i], (struct sockaddr *)&a, &len), 0);
        ports[i] = ntohs(a.sin_port);
    }
    for (uint32_t i = 0; i < LOOP_N; i++) {
        close(fds[i]);
    }
}

static void loop_cluster(struct cfg_cluster *cluster, struct key_identity keys[LOOP_N],
                         struct key_identity *admin)
{
    uint16_t ports[LOOP_N];
    loop_ports(ports);
    memset(cluster, 0, sizeof(*cluster));
    cluster->bft = 1;
    cluster->fault_count = 1;
    cluster->replica_count = LOOP_N;
    assert_int_equal(key_identity_generate(admin, "admin"), 0);
    memcpy(cluster->admin_key, admin->public_key, TRONE_KEY_LEN);
    for (uint32_t i = 0; i < LOOP_N; i++) {
        char name[16];
        snprintf(name, sizeof(name), "replica%u", i);
        assert_int_equal(key_identity_generate(&keys[i], name), 0);
        snprintf(cluster->replicas[i].host, sizeof(cluster->replicas[i].host), "127.0.0.1");
        cluster->replicas[i].port = ports[i];
        memcpy(cluster->replicas[i].public_key, keys[i].public_key, TRONE_KEY_LEN);
    }
}

/* Polls status until every replica answers, has sessions with all peers, and reports the
 * same executed seq and table digest as replica 0; the last report stays in report. */
static void loop_wait_converged(struct rt_client *c, struct rt_client_status_report *report)
{
    uint64_t all = (UINT64_C(1) << LOOP_N) - 1;
    for (int round = 0; round < LOOP_ROUNDS; round++) {
        bool ok = rt_client_status(c, 1000, report) == LOOP_N;
        for (uint32_t i = 0; ok && i < LOOP_N; i++) {
            const struct rt_status *st = &report->replicas[i].status;
            ok = st->replica == i && st->peers == (all & ~(UINT64_C(1) << i)) &&
                 memcmp(st->digest, report->replicas[0].status.digest, TRONE_HASH_LEN) == 0 &&
                 st->executed == report->replicas[0].status.executed;
        }
        if (ok) {
            return;
        }
        usleep(50 * 1000);
    }
    fail_msg("the loopback cluster did not converge");
}

static void loop_create_channel(struct rt_client *c, const char *tag)
{
    struct brk_op *op = calloc(1, sizeof(*op));
    assert_non_null(op);
    brk_op_init(op, BRK_OP_CHANNEL_CREATE);
    assert_int_equal(brk_op_set_tag(op, tag), 0);
    struct buf encoded;
    buf_init(&encoded, 0);
    assert_int_equal(brk_op_encode(op, &encoded), 0);
    struct buf result;
    buf_init(&result, 0);
    char errmsg[256] = "";
    int rc = rt_client_call(c, encoded.data, encoded.used, 20000, &result, errmsg, sizeof(errmsg));
    if (rc != 0) {
        fail_msg("create %s: %s", tag, errmsg);
    }
    struct brk_result res;
    assert_int_equal(brk_result_decode(result.data, result.used, &res), 0);
    assert_int_equal(res.status, 0);
    buf_close(&result);
    buf_close(&encoded);
    free(op);
}

/* Sends bytes that are no session at all to replica 0 and waits for it to hang up. */
static void loop_hostile(const struct cfg_cluster *cluster)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(cluster->replicas[0].port);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    const char junk[] = "TRONE1\x02\x00\x00\x00\x00\xff\xff\xff\xff garbage";
    assert_true(write(fd, junk, sizeof(junk)) == (ssize_t)sizeof(junk));
    char reply[16];
    assert_true(read(fd, reply, sizeof(reply)) <= 0); /* closed without a word */
    close(fd);
}

/* Four replicas in this process agree on control operations over real TCP and Noise: every
 * replica answers status with the same digest, a hostile connection is dropped without harm,
 * an unknown key is refused, and SIGTERM stops every replica cleanly. */
static void test_loopback_cluster(void **state)
{
    (void)state;
    static struct loop_replica replicas[LOOP_N];
    struct cfg_cluster cluster;
    struct key_identity keys[LOOP_N];
    struct key_identity admin;
    loop_cluster(&cluster, keys, &admin);
    for (uint32_t i = 0; i < LOOP_N; i++) {
        memset(&replicas[i], 0, sizeof(replicas[i]));
        replicas[i].config.cluster = cluster;
        replicas[i].config.self = i;
        replicas[i].config.key = keys[i];
        assert_int_equal(pthread_create(&replicas[i].thread, NULL, loop_replica_main, &replicas[i]),
                         0);
    }
    struct rt_client *c = rt_client_create(&cluster, &admin);
    assert_non_null(c);
    struct rt_client_status_report *report = calloc(1, sizeof(*report));
    assert_non_null(report);
    loop_wait_converged(c, report);
    uint8_t empty_digest[TRONE_HASH_LEN];
    memcpy(empty_digest, report->replicas[0].status.digest, TRONE_HASH_LEN);
    loop_create_channel(c, "alpha.events");
    loop_create_channel(c, "beta.events");
    loop_hostile(&cluster);
    loop_wait_converged(c, report);
    assert_true(report->replicas[0].status.executed >= 2);
    assert_memory_not_equal(report->replicas[0].status.digest, empty_digest, TRONE_HASH_LEN);

    struct key_identity stranger;
    assert_int_equal(key_identity_generate(&stranger, "stranger"), 0);
    struct rt_client *s = rt_client_create(&cluster, &stranger);
    assert_non_null(s);
    struct buf result;
    buf_init(&result, 0);
    char errmsg[256] = "";
    const uint8_t op[] = {BRK_OP_VERSION, BRK_OP_CHANNEL_LIST, 0, 0};
    assert_int_equal(rt_client_call(s, op, sizeof(op), 20000, &result, errmsg, sizeof(errmsg)),
                     TRONE_EPERM);
    assert_non_null(strstr(errmsg, "refused"));
    rt_client_destroy(s);
    rt_client_destroy(c);
    buf_close(&result);
    free(report);

    assert_int_equal(kill(getpid(), SIGTERM), 0);
    for (uint32_t i = 0; i < LOOP_N; i++) {
        assert_int_equal(pthread_join(replicas[i].thread, NULL), 0);
        if (replicas[i].rc != 0) {
            fail_msg("replica %u: %s", i, replicas[i].errmsg);
        }
        key_identity_wipe(&keys[i]);
    }
    key_identity_wipe(&admin);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_answer_round_trip),
        cmocka_unit_test(test_answer_layout),
        cmocka_unit_test(test_answer_lengths),
        cmocka_unit_test(test_answer_ranges),
        cmocka_unit_test(test_query),
        cmocka_unit_test(test_type),
        cmocka_unit_test(test_ratelimit),
        cmocka_unit_test(test_seconds),
        cmocka_unit_test(test_loopback_cluster),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
