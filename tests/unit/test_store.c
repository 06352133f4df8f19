/* test_store.c: the replica store (store.h over LMDB): reopen, grouped writes and rollback,
 * refusal of another replica's, another cluster's or a newer format's directory, detection of
 * corrupt and truncated files, retention of durable events, and a full disk (a tiny map and
 * a tiny tmpfs) that is reported without damaging what was committed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <lmdb.h>
#include <sodium.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store/store.h"

/* ---- Fixture ---- */

struct fixture {
    char dir[64];
    struct store_config config;
    char errmsg[256];
    char mnt[128]; /* a tmpfs mounted by a test, unmounted by teardown */
    bool mounted;
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    snprintf(f->dir, sizeof(f->dir), "/tmp/trone-test-store-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    f->config.dir = f->dir;
    f->config.replica = 1;
    memset(f->config.cluster_id, 0xc1, sizeof(f->config.cluster_id));
    f->config.no_sync = true; /* the tests check contents, not durability across power loss */
    *state = f;
    return 0;
}

static void remove_files(const char *dir)
{
    static const char *const names[] = {"data.mdb", "lock.mdb", "owner.lock"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        char path[256];
        snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
        (void)unlink(path);
    }
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    if (f->mounted) {
        remove_files(f->mnt);
        assert_int_equal(umount2(f->mnt, MNT_DETACH), 0);
    }
    if (f->mnt[0] != 0) {
        assert_int_equal(rmdir(f->mnt), 0);
    }
    remove_files(f->dir);
    assert_int_equal(rmdir(f->dir), 0);
    free(f);
    return 0;
}

/* ---- Helpers ---- */

static struct store *open_ok(struct fixture *f)
{
    struct store *s = NULL;
    int rc = store_open(&f->config, &s, f->errmsg, sizeof(f->errmsg));
    if (rc != 0) {
        fail_msg("store_open: %s (%s)", f->errmsg, trone_err_name(rc));
    }
    return s;
}

static void put_log(struct store *s, uint8_t kind, uint64_t seq, const char *text)
{
    assert_int_equal(store_batch_begin(s), 0);
    assert_int_equal(store_log_put(s, kind, seq, (const uint8_t *)text, strlen(text)), 0);
    assert_int_equal(store_batch_commit(s), 0);
}

struct collected {
    uint32_t count;
    uint8_t kinds[64];
    uint64_t seqs[64];
    char texts[64][64];
};

static int collect(void *ctx, uint8_t kind, uint64_t seq, const uint8_t *data, size_t size)
{
    struct collected *c = ctx;
    assert_true(c->count < 64);
    assert_true(size < 64);
    c->kinds[c->count] = kind;
    c->seqs[c->count] = seq;
    memcpy(c->texts[c->count], data, size);
    c->texts[c->count][size] = 0;
    c->count++;
    return 0;
}

static void data_path(const struct fixture *f, char *out, size_t size)
{
    snprintf(out, size, "%s/data.mdb", f->dir);
}

/* Flips one byte of the first occurrence of pattern in the data file. */
static void corrupt_pattern(const struct fixture *f, const char *pattern)
{
    char path[256];
    data_path(f, path, sizeof(path));
    FILE *fp = fopen(path, "r+b");
    assert_non_null(fp);
    assert_int_equal(fseek(fp, 0, SEEK_END), 0);
    long size = ftell(fp);
    assert_true(size > 0);
    uint8_t *bytes = malloc((size_t)size);
    assert_non_null(bytes);
    rewind(fp);
    assert_int_equal(fread(bytes, 1, (size_t)size, fp), (size_t)size);
    size_t len = strlen(pattern);
    long at = -1;
    for (long i = 0; i + (long)len <= size && at < 0; i++) {
        if (memcmp(bytes + i, pattern, len) == 0) {
            at = i;
        }
    }
    assert_true(at >= 0);
    bytes[at + 2] ^= 0x20;
    assert_int_equal(fseek(fp, at + 2, SEEK_SET), 0);
    assert_int_equal(fwrite(&bytes[at + 2], 1, 1, fp), 1);
    assert_int_equal(fclose(fp), 0);
    free(bytes);
}

static void expect_open_error(struct fixture *f, int code, const char *words)
{
    struct store *s = NULL;
    f->errmsg[0] = 0;
    assert_int_equal(store_open(&f->config, &s, f->errmsg, sizeof(f->errmsg)), code);
    assert_null(s);
    if (strstr(f->errmsg, words) == NULL) {
        fail_msg("error '%s' does not say '%s'", f->errmsg, words);
    }
}

/* ---- Scenarios ---- */

/* Records written in batches come back in (kind, seq) order after a reopen; a record
 * replaced keeps its last value; drop_upto removes one kind's prefix only. */
static void test_reopen_and_order(void **state)
{
    struct fixture *f = *state;
    struct store *s = open_ok(f);
    struct store_stats st;
    store_stats_get(s, &st);
    assert_true(st.created);
    put_log(s, 2, 10, "slot ten");
    put_log(s, 2, 3, "slot three");
    put_log(s, 1, 0, "view");
    put_log(s, 2, 3, "slot three again");
    put_log(s, 3, 0, "checkpoint");
    store_close(s);

    s = open_ok(f);
    store_stats_get(s, &st);
    assert_false(st.created);
    assert_int_equal(st.log_records, 4);
    struct collected c = {0};
    assert_int_equal(store_log_each(s, collect, &c), 0);
    assert_int_equal(c.count, 4);
    assert_int_equal(c.kinds[0], 1);
    assert_int_equal(c.seqs[1], 3);
    assert_string_equal(c.texts[1], "slot three again");
    assert_int_equal(c.seqs[2], 10);
    assert_string_equal(c.texts[3], "checkpoint");

    assert_int_equal(store_batch_begin(s), 0);
    assert_int_equal(store_log_drop_upto(s, 2, 10), 0);
    assert_int_equal(store_batch_commit(s), 0);
    memset(&c, 0, sizeof(c));
    assert_int_equal(store_log_each(s, collect, &c), 0);
    assert_int_equal(c.count, 2);
    assert_int_equal(c.kinds[0], 1);
    assert_int_equal(c.kinds[1], 3);
    store_close(s);
}

/* An aborted batch leaves nothing behind; a second batch cannot open inside the first. */
static void test_abort(void **state)
{
    struct fixture *f = *state;
    struct store *s = open_ok(f);
    put_log(s, 2, 1, "kept");
    assert_int_equal(store_batch_begin(s), 0);
    assert_int_equal(store_batch_begin(s), TRONE_EBUSY);
    assert_int_equal(store_log_put(s, 2, 2, (const uint8_t *)"lost", 4), 0);
    assert_int_equal(store_log_drop_upto(s, 2, 1), 0);
    store_batch_abort(s);
    struct collected c = {0};
    assert_int_equal(store_log_each(s, collect, &c), 0);
    assert_int_equal(c.count, 1);
    assert_string_equal(c.texts[0], "kept");
    assert_int_equal(store_log_put(s, 2, 3, (const uint8_t *)"x", 1), TRONE_EINVAL);
    store_close(s);
}

/* A directory belongs to one replica of one cluster; a second process cannot share it. */
static void test_wrong_owner(void **state)
{
    struct fixture *f = *state;
    struct store *s = open_ok(f);
    struct store *other = NULL;
    assert_int_equal(store_open(&f->config, &other, f->errmsg, sizeof(f->errmsg)), TRONE_EBUSY);
    assert_non_null(strstr(f->errmsg, "in use"));
    store_close(s);

    f->config.replica = 2;
    expect_open_error(f, TRONE_ECONFIG, "belongs to replica 1, not 2");
    f->config.replica = 1;
    f->config.cluster_id[5] ^= 1;
    expect_open_error(f, TRONE_ECONFIG, "another cluster");
    f->config.cluster_id[5] ^= 1;
    store_close(open_ok(f));
}

/* A meta record of a newer format is refused with both versions named. The meta record is
 * rewritten here with LMDB directly, checksummed as store_io.c does. */
static void test_newer_format(void **state)
{
    struct fixture *f = *state;
    store_close(open_ok(f));
    MDB_env *env = NULL;
    MDB_txn *txn = NULL;
    MDB_dbi dbi;
    assert_int_equal(mdb_env_create(&env), 0);
    assert_int_equal(mdb_env_set_maxdbs(env, 4), 0);
    assert_int_equal(mdb_env_open(env, f->dir, 0, 0600), 0);
    assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
    assert_int_equal(mdb_dbi_open(txn, "meta", 0, &dbi), 0);
    uint8_t value[16 + 40];
    uint8_t *p = value + 16;
    memset(value, 0, sizeof(value));
    p[0] = 3; /* format 3, little-endian */
    p[4] = 1; /* replica 1 */
    memcpy(p + 8, f->config.cluster_id, 32);
    uint8_t domain = 1;
    crypto_generichash_state st;
    crypto_generichash_init(&st, NULL, 0, 16);
    crypto_generichash_update(&st, &domain, 1);
    crypto_generichash_update(&st, (const uint8_t *)"meta", 4);
    crypto_generichash_update(&st, p, 40);
    crypto_generichash_final(&st, value, 16);
    MDB_val key = {.mv_size = 4, .mv_data = "meta"};
    MDB_val val = {.mv_size = sizeof(value), .mv_data = value};
    assert_int_equal(mdb_put(txn, dbi, &key, &val, 0), 0);
    assert_int_equal(mdb_txn_commit(txn), 0);
    mdb_env_close(env);
    expect_open_error(f, TRONE_ECONFIG, "format version 3 is newer than this build's 1");
}

/* A byte flipped inside a stored value is caught by its checksum at open. */
static void test_checksum_mismatch(void **state)
{
    struct fixture *f = *state;
    struct store *s = open_ok(f);
    put_log(s, 2, 7, "PATTERN-TO-CORRUPT-0123456789");
    store_close(s);
    corrupt_pattern(f, "PATTERN-TO-CORRUPT");
    expect_open_error(f, TRONE_ECORRUPT, "corrupt");
    /* --rebuild's path: wipe, then a fresh store opens. */
    assert_int_equal(store_wipe(f->dir, f->errmsg, sizeof(f->errmsg)), 0);
    s = open_ok(f);
    struct store_stats st;
    store_stats_get(s, &st);
    assert_true(st.created);
    assert_int_equal(st.log_records, 0);
    store_close(s);
}

/* A file cut short (mid-way, or to nothing) is refused at open, never mapped and used. */
static void test_truncated(void **state)
{
    struct fixture *f = *state;
    struct store *s = open_ok(f);
    uint8_t big[3000];
    memset(big, 0x5a, sizeof(big));
    assert_int_equal(store_batch_begin(s), 0);
    for (uint64_t seq = 1; seq <= 64; seq++) {
        assert_int_equal(store_log_put(s, 2, seq, big, sizeof(big)), 0);
    }
    assert_int_equal(store_batch_commit(s), 0);
    store_close(s);
    char path[256];
    data_path(f, path, sizeof(path));
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(truncate(path, st.st_size / 2), 0);
    expect_open_error(f, TRONE_ECORRUPT, "truncated");
    assert_int_equal(truncate(path, 0), 0);
    expect_open_error(f, TRONE_ECORRUPT, "empty");
}

struct event_seen {
    uint32_t count;
    uint64_t positions[64];
};

static int event_collect(void *ctx, uint64_t position, uint64_t time_ms, const uint8_t *data,
                         size_t size)
{
    struct event_seen *e = ctx;
    (void)time_ms;
    assert_true(size == 100);
    assert_int_equal(data[0], (uint8_t)position);
    e->positions[e->count++] = position;
    return 0;
}

static void put_events(struct store *s, uint64_t channel, uint64_t from, uint64_t to,
                       uint64_t time_ms)
{
    uint8_t payload[100];
    assert_int_equal(store_batch_begin(s), 0);
    for (uint64_t p = from; p <= to; p++) {
        memset(payload, (int)(uint8_t)p, sizeof(payload));
        assert_int_equal(store_event_put(s, channel, p, time_ms, payload, sizeof(payload)), 0);
    }
    assert_int_equal(store_batch_commit(s), 0);
}

/* Events read back by (channel, position); positions must grow; retention by size and by
 * age deletes the oldest events in bounded steps and keeps the others readable. */
static void test_events_retention(void **state)
{
    struct fixture *f = *state;
    struct store *s = open_ok(f);
    put_events(s, 7, 1, 20, 1000);
    put_events(s, 8, 1, 10, 1000);
    assert_int_equal(store_batch_begin(s), 0);
    assert_int_equal(store_event_put(s, 7, 20, 1000, (const uint8_t *)"x", 1), TRONE_EINVAL);
    store_batch_abort(s);

    struct event_seen e = {0};
    assert_int_equal(store_event_read(s, 7, 5, 3, event_collect, &e), 0);
    assert_int_equal(e.count, 3);
    assert_int_equal(e.positions[0], 5);
    assert_int_equal(e.positions[2], 7);

    /* Size: channel 7 keeps at most 1000 payload bytes, i.e. its 10 newest events. */
    assert_int_equal(store_retention_set(s, 7, 0, 1000), 0);
    uint32_t deleted = 0;
    uint32_t total = 0;
    for (int round = 0; round < 10; round++) {
        assert_int_equal(store_retention_step(s, 2000, 4, &deleted), 0);
        total += deleted;
        if (deleted < 4) {
            break;
        }
    }
    assert_int_equal(total, 10);
    struct store_channel_info info;
    assert_int_equal(store_channel_info(s, 7, &info), 0);
    assert_int_equal(info.first, 11);
    assert_int_equal(info.last, 20);
    assert_int_equal(info.count, 10);
    assert_int_equal(info.bytes, 1000);
    memset(&e, 0, sizeof(e));
    assert_int_equal(store_event_read(s, 7, 0, 64, event_collect, &e), 0);
    assert_int_equal(e.count, 10);
    assert_int_equal(e.positions[0], 11);
    /* What retention deleted is marked and never taken back (a peer that has not applied its
     * own retention yet would offer it to the anti-entropy), across a reopen. */
    assert_int_equal(info.trimmed, 10);
    store_close(s);
    s = open_ok(f);
    assert_int_equal(store_batch_begin(s), 0);
    assert_int_equal(store_event_insert(s, 7, 10, 1000, (const uint8_t *)"x", 1), TRONE_EEXIST);
    assert_int_equal(store_event_insert(s, 7, 1, 1000, (const uint8_t *)"x", 1), TRONE_EEXIST);
    assert_int_equal(store_batch_commit(s), 0);
    assert_int_equal(store_channel_info(s, 7, &info), 0);
    assert_int_equal(info.first, 11);
    assert_int_equal(info.count, 10);
    assert_int_equal(info.trimmed, 10);

    /* Age: channel 8's events (time 1000) expire after 500 ms; newer ones stay. */
    put_events(s, 8, 11, 12, 5000);
    assert_int_equal(store_retention_set(s, 8, 500, 0), 0);
    assert_int_equal(store_retention_step(s, 5200, 100, &deleted), 0);
    assert_int_equal(deleted, 10);
    assert_int_equal(store_channel_info(s, 8, &info), 0);
    assert_int_equal(info.first, 11);
    assert_int_equal(info.count, 2);
    assert_int_equal(info.trimmed, 10);
    assert_int_equal(store_channel_info(s, 9, &info), TRONE_ENOENT);
    store_close(s);
}

/* The size rule bounds a durable channel (a group of the stream index) as a whole: two
 * streams of group 3 (a publisher that restarted: its old and its new epoch) with a limit of
 * 1000 bytes keep 10 events of 100 bytes together, the oldest by time deleted first across
 * the streams; a stream of another group is left alone. Without the group rule each stream
 * would keep 1000 bytes. */
static void test_retention_per_channel(void **state)
{
    struct fixture *f = *state;
    struct store *s = open_ok(f);
    assert_int_equal(store_batch_begin(s), 0);
    assert_int_equal(store_stream_put(s, 3, 31, (const uint8_t *)"old", 3), 0);
    assert_int_equal(store_stream_put(s, 3, 32, (const uint8_t *)"new", 3), 0);
    assert_int_equal(store_stream_put(s, 4, 41, (const uint8_t *)"other", 5), 0);
    assert_int_equal(store_batch_commit(s), 0);
    put_events(s, 31, 1, 8, 1000);  /* 800 bytes, time 1000 */
    put_events(s, 32, 1, 6, 2000);  /* 600 bytes, time 2000 */
    put_events(s, 41, 1, 12, 500);  /* 1200 bytes of another channel, oldest of all */
    for (uint64_t c = 31; c <= 32; c++) {
        assert_int_equal(store_retention_set(s, c, 0, 1000), 0);
    }
    uint32_t deleted = 0;
    uint32_t total = 0;
    for (int round = 0; round < 10; round++) {
        assert_int_equal(store_retention_step(s, 3000, 3, &deleted), 0);
        total += deleted;
        if (deleted < 3) {
            break;
        }
    }
    assert_int_equal(total, 4);
    struct store_channel_info old_info;
    struct store_channel_info new_info;
    struct store_channel_info other;
    assert_int_equal(store_channel_info(s, 31, &old_info), 0);
    assert_int_equal(store_channel_info(s, 32, &new_info), 0);
    assert_int_equal(store_channel_info(s, 41, &other), 0);
    assert_int_equal(old_info.count, 4); /* the 4 oldest of the group went */
    assert_int_equal(old_info.first, 5);
    assert_int_equal(new_info.count, 6);
    assert_int_equal(new_info.first, 1);
    assert_int_equal(old_info.trimmed, 4); /* marked by the group rule too */
    assert_int_equal(new_info.trimmed, 0);
    assert_int_equal(old_info.bytes + new_info.bytes, 1000);
    assert_int_equal(other.count, 12); /* no limit there */
    struct event_seen e = {0};
    assert_int_equal(store_event_read(s, 31, 0, 64, event_collect, &e), 0);
    assert_int_equal(e.count, 4);
    assert_int_equal(e.positions[0], 5);
    store_close(s);
}

/* Fills a store with event batches until a write fails; returns the error and the last
 * position committed. */
static int fill(struct store *s, uint64_t channel, size_t event_size, uint64_t *committed)
{
    uint8_t *payload = calloc(1, event_size);
    assert_non_null(payload);
    uint64_t position = 0;
    int rc = 0;
    for (int batch = 0; batch < 100000 && rc == 0; batch++) {
        assert_int_equal(store_batch_begin(s), 0);
        for (int i = 0; i < 8 && rc == 0; i++) {
            payload[0] = (uint8_t)(position + 1);
            rc = store_event_put(s, channel, position + 1, 10, payload, event_size);
            position += rc == 0 ? 1 : 0;
        }
        int crc = store_batch_commit(s);
        rc = rc != 0 ? rc : crc;
        if (rc == 0) {
            *committed = position;
        }
    }
    free(payload);
    return rc;
}

static void check_full_then_recover(struct store *s, uint64_t committed)
{
    struct store_stats st;
    store_stats_get(s, &st);
    assert_true(st.full);
    struct store_channel_info info;
    assert_int_equal(store_channel_info(s, 1, &info), 0);
    assert_int_equal(info.last, committed); /* the failed batch left nothing */
    assert_int_equal(store_batch_begin(s), 0);
    assert_int_equal(store_event_put(s, 1, committed + 1, 10, (const uint8_t *)"x", 1),
                     TRONE_EFULL);
    store_batch_abort(s);
    /* Retention frees space and clears the full state. */
    assert_int_equal(store_retention_set(s, 1, 0, 1), 0);
    uint32_t deleted = 0;
    assert_int_equal(store_retention_step(s, 20, 64, &deleted), 0);
    assert_int_equal(deleted, 64);
    store_stats_get(s, &st);
    assert_false(st.full);
}

/* A map too small for the data: MDB_MAP_FULL is reported as TRONE_EFULL, the store refuses
 * durable events, what was committed stays intact and readable after a reopen. */
/* The stream index: entries of one group come back in channel id order, strictly after the
 * cursor, survive a reopen, stay apart from other groups, and a batch sees its own writes. */
static void test_stream_index(void **state)
{
    struct fixture *f = *state;
    struct store *s = open_ok(f);
    assert_int_equal(store_stream_put(s, 5, 9, (const uint8_t *)"x", 1), TRONE_EINVAL);
    assert_int_equal(store_batch_begin(s), 0);
    assert_int_equal(store_stream_put(s, 5, 30, (const uint8_t *)"thirty", 6), 0);
    assert_int_equal(store_stream_put(s, 5, 10, (const uint8_t *)"ten", 3), 0);
    assert_int_equal(store_stream_put(s, 6, 1, (const uint8_t *)"other", 5), 0);
    assert_int_equal(store_stream_put(s, 4, 99, (const uint8_t *)"before", 6), 0);
    assert_int_equal(store_stream_put(s, 5, 10, (const uint8_t *)"ten", 3), 0); /* again */
    assert_int_equal(store_stream_put(s, 5, 10, (const uint8_t *)"TEN", 3), TRONE_EEXIST);
    uint64_t id = 0;
    uint8_t d[STORE_STREAM_DESC_MAX];
    size_t n = 0;
    assert_int_equal(store_stream_next(s, 5, 0, &id, d, sizeof(d), &n), 0); /* in the batch */
    assert_int_equal(id, 10);
    assert_int_equal(store_batch_commit(s), 0);
    store_close(s);

    s = open_ok(f);
    assert_int_equal(store_stream_next(s, 5, 0, &id, d, sizeof(d), &n), 0);
    assert_int_equal(id, 10);
    assert_int_equal(n, 3);
    assert_memory_equal(d, "ten", 3);
    assert_int_equal(store_stream_next(s, 5, 10, &id, d, sizeof(d), &n), 0);
    assert_int_equal(id, 30);
    assert_memory_equal(d, "thirty", 6);
    assert_int_equal(store_stream_next(s, 5, 30, &id, d, sizeof(d), &n), TRONE_ENOENT);
    assert_int_equal(store_stream_next(s, 7, 0, &id, d, sizeof(d), &n), TRONE_ENOENT);
    assert_int_equal(store_stream_next(s, 6, 0, &id, d, sizeof(d), &n), 0);
    assert_int_equal(id, 1);
    assert_int_equal(store_stream_next(s, 5, 0, &id, d, 2, &n), TRONE_ECORRUPT); /* too small */
    store_close(s);
}

struct events_seen {
    uint32_t count;
    uint64_t positions[8];
    uint8_t first_bytes[4];
};

static int events_collect(void *ctx, uint64_t position, uint64_t time_ms, const uint8_t *data,
                          size_t size)
{
    struct events_seen *e = ctx;
    (void)time_ms;
    assert_true(e->count < 8 && size >= 4);
    if (e->count == 0) {
        memcpy(e->first_bytes, data, 4);
    }
    e->positions[e->count++] = position;
    return 0;
}

/* Holes are found and filled below a channel's last (a catch-up from peers): insert stores
 * a missing position, refuses a held one without writing, keeps first/last/count right, and
 * hole walks stop at scan_max; a full store refuses inserts like puts. */
static void test_event_insert_hole(void **state)
{
    struct fixture *f = *state;
    struct store *s = open_ok(f);
    const uint8_t ev[4] = {1, 2, 3, 4};
    assert_int_equal(store_event_insert(s, 7, 5, 0, ev, sizeof(ev)), TRONE_EINVAL); /* no batch */
    assert_int_equal(store_batch_begin(s), 0);
    uint64_t held[] = {3, 4, 5, 9, 10, 20};
    for (size_t i = 0; i < sizeof(held) / sizeof(held[0]); i++) {
        assert_int_equal(store_event_put(s, 7, held[i], 100, ev, sizeof(ev)), 0);
    }
    assert_int_equal(store_event_insert(s, 7, 0, 0, ev, sizeof(ev)), TRONE_EINVAL);
    assert_int_equal(store_batch_commit(s), 0);
    uint64_t hole = 0;
    uint64_t end = 0;
    assert_int_equal(store_event_hole(s, 7, 1, 100, &hole, &end), 0);
    assert_int_equal(hole, 1);
    assert_int_equal(end, 3);
    assert_int_equal(store_event_hole(s, 7, 3, 100, &hole, &end), 0);
    assert_int_equal(hole, 6);
    assert_int_equal(end, 9);
    assert_int_equal(store_event_hole(s, 7, 9, 100, &hole, &end), 0);
    assert_int_equal(hole, 11);
    assert_int_equal(end, 20);
    assert_int_equal(store_event_hole(s, 7, 20, 100, &hole, &end), 0);
    assert_int_equal(hole, 21);
    assert_int_equal(end, UINT64_MAX);
    assert_int_equal(store_event_hole(s, 8, 1, 100, &hole, &end), 0); /* empty channel */
    assert_int_equal(hole, 1);
    assert_int_equal(end, UINT64_MAX);
    assert_int_equal(store_event_hole(s, 7, 3, 2, &hole, &end), TRONE_EBUSY); /* bounded */
    assert_int_equal(hole, 5);
    assert_int_equal(end, 5);

    /* Fill 1, 2, 6, 7 and 8 below the last; 5 is held already. */
    assert_int_equal(store_batch_begin(s), 0);
    uint64_t filled[] = {2, 1, 6, 7, 8};
    for (size_t i = 0; i < sizeof(filled) / sizeof(filled[0]); i++) {
        assert_int_equal(store_event_insert(s, 7, filled[i], 200, ev, sizeof(ev)), 0);
    }
    assert_int_equal(store_event_insert(s, 7, 5, 200, (const uint8_t *)"zzzz", 4), TRONE_EEXIST);
    assert_int_equal(store_event_insert(s, 9, 4, 200, ev, sizeof(ev)), 0); /* new channel */
    assert_int_equal(store_batch_commit(s), 0);
    struct store_channel_info info;
    assert_int_equal(store_channel_info(s, 7, &info), 0);
    assert_int_equal(info.first, 1);
    assert_int_equal(info.last, 20);
    assert_int_equal(info.count, 11);
    assert_int_equal(info.bytes, 11 * sizeof(ev));
    assert_int_equal(store_channel_info(s, 9, &info), 0);
    assert_int_equal(info.first, 4);
    assert_int_equal(info.last, 4);
    assert_int_equal(store_event_hole(s, 7, 1, 100, &hole, &end), 0);
    assert_int_equal(hole, 11);
    assert_int_equal(end, 20);
    /* The held 5 kept its bytes. */
    struct events_seen seen = {0};
    assert_int_equal(store_event_read(s, 7, 5, 1, events_collect, &seen), 0);
    assert_int_equal(seen.count, 1);
    assert_int_equal(seen.positions[0], 5);
    assert_memory_equal(seen.first_bytes, ev, sizeof(ev));
    store_close(s);

    /* A full store refuses inserts whole. */
    f->config.map_size_bytes = 256 * 1024;
    s = open_ok(f);
    uint64_t committed = 0;
    assert_int_equal(fill(s, 1, 1000, &committed), TRONE_EFULL);
    assert_int_equal(store_batch_begin(s), 0);
    assert_int_equal(store_event_insert(s, 7, 12, 0, ev, sizeof(ev)), TRONE_EFULL);
    store_batch_abort(s);
    store_close(s);
}

/* A channel's oldest events up to a position are deleted in the open batch (a total-order
 * channel's pending events once stored at their positions), at most delete_max at once, with
 * the channel's first, count and bytes following; puts into the channel in the same batch
 * before the drop are seen by it; a channel holding nothing is no error. */
static void test_event_drop_upto(void **state)
{
    struct fixture *f = *state;
    struct store *s = open_ok(f);
    const uint8_t ev[4] = {1, 2, 3, 4};
    uint32_t deleted = 7;
    assert_int_equal(store_event_drop_upto(s, 7, 5, 10, &deleted), TRONE_EINVAL); /* no batch */
    assert_int_equal(deleted, 0);
    assert_int_equal(store_batch_begin(s), 0);
    for (uint64_t p = 1; p <= 10; p++) {
        assert_int_equal(store_event_put(s, 7, p, 100, ev, sizeof(ev)), 0);
    }
    assert_int_equal(store_event_drop_upto(s, 7, 6, 4, &deleted), 0); /* bounded */
    assert_int_equal(deleted, 4);
    assert_int_equal(store_event_put(s, 7, 11, 100, ev, sizeof(ev)), 0);
    assert_int_equal(store_batch_commit(s), 0);
    struct store_channel_info info;
    assert_int_equal(store_channel_info(s, 7, &info), 0);
    assert_int_equal(info.first, 5);
    assert_int_equal(info.last, 11);
    assert_int_equal(info.count, 7);
    assert_int_equal(info.bytes, 7 * sizeof(ev));
    assert_int_equal(store_batch_begin(s), 0);
    assert_int_equal(store_event_drop_upto(s, 7, 6, 100, &deleted), 0);
    assert_int_equal(deleted, 2);
    assert_int_equal(store_event_drop_upto(s, 7, 6, 100, &deleted), 0); /* nothing left <= 6 */
    assert_int_equal(deleted, 0);
    assert_int_equal(store_event_drop_upto(s, 8, 6, 100, &deleted), 0); /* unknown channel */
    assert_int_equal(deleted, 0);
    assert_int_equal(store_batch_commit(s), 0);
    struct events_seen seen = {0};
    assert_int_equal(store_event_read(s, 7, 1, 100, events_collect, &seen), 0);
    assert_int_equal(seen.count, 5);
    assert_int_equal(seen.positions[0], 7);
    store_close(s);
    s = open_ok(f); /* the drops were committed */
    assert_int_equal(store_channel_info(s, 7, &info), 0);
    assert_int_equal(info.first, 7);
    assert_int_equal(info.count, 5);
    assert_int_equal(store_batch_begin(s), 0);
    assert_int_equal(store_event_drop_upto(s, 7, UINT64_MAX, 100, &deleted), 0);
    assert_int_equal(deleted, 5);
    assert_int_equal(store_batch_commit(s), 0);
    assert_int_equal(store_channel_info(s, 7, &info), 0);
    assert_int_equal(info.count, 0);
    assert_int_equal(info.first, 0);
    assert_int_equal(info.last, 11); /* positions never go back */
    store_close(s);
}

static void test_map_full(void **state)
{
    struct fixture *f = *state;
    f->config.map_size_bytes = 256 * 1024;
    struct store *s = open_ok(f);
    uint64_t committed = 0;
    assert_int_equal(fill(s, 1, 1000, &committed), TRONE_EFULL);
    assert_true(committed > 0);
    check_full_then_recover(s, committed);
    store_close(s);
    s = open_ok(f);
    struct store_channel_info info;
    assert_int_equal(store_channel_info(s, 1, &info), 0);
    assert_int_equal(info.last, committed);
    store_close(s);
}

/* A real full disk: a 512 KiB tmpfs mounted for the test (skipped where mounting is not
 * allowed). ENOSPC at commit is TRONE_EFULL and nothing committed is lost. */
static void test_tmpfs_full(void **state)
{
    struct fixture *f = *state;
    snprintf(f->mnt, sizeof(f->mnt), "%s/mnt", f->dir);
    assert_int_equal(mkdir(f->mnt, 0700), 0);
    if (mount("tmpfs", f->mnt, "tmpfs", 0, "size=512k") != 0) {
        skip();
    }
    f->mounted = true;
    struct fixture small = *f;
    small.config.dir = f->mnt;
    small.config.no_sync = false;
    struct store *s = open_ok(&small);
    uint64_t committed = 0;
    int rc = fill(s, 1, 1000, &committed);
    assert_int_equal(rc, TRONE_EFULL);
    assert_true(committed > 0);
    check_full_then_recover(s, committed);
    store_close(s);
    s = open_ok(&small);
    struct store_channel_info info;
    assert_int_equal(store_channel_info(s, 1, &info), 0);
    assert_int_equal(info.last, committed);
    store_close(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_reopen_and_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_abort, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wrong_owner, setup, teardown),
        cmocka_unit_test_setup_teardown(test_newer_format, setup, teardown),
        cmocka_unit_test_setup_teardown(test_checksum_mismatch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_truncated, setup, teardown),
        cmocka_unit_test_setup_teardown(test_events_retention, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retention_per_channel, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stream_index, setup, teardown),
        cmocka_unit_test_setup_teardown(test_event_insert_hole, setup, teardown),
        cmocka_unit_test_setup_teardown(test_event_drop_upto, setup, teardown),
        cmocka_unit_test_setup_teardown(test_map_full, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tmpfs_full, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
