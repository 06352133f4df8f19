/* store_io.c: the store on LMDB (store.h). The only file of TRONE that includes lmdb.h.
 * Five databases in one environment: "meta" (format, replica, cluster), "log" (replication
 * records keyed kind|seq), "events" (keyed channel|position), "chans" (per channel
 * counters and retention) and "streams" (the stream index keyed group|channel). Every value starts with a 16-byte BLAKE2b of a domain byte, the
 * key and the payload, checked at every read, so a flipped bit or a value moved under
 * another key reads as TRONE_ECORRUPT instead of as data. */
#include "store/store.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <lmdb.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "core/assert.h"
#include "core/buf.h"

#define STORE_SUM_LEN 16u
#define STORE_LOG_KEY_LEN 9u
#define STORE_EVENT_KEY_LEN 16u
#define STORE_META_LEN (4u + 4u + TRONE_HASH_LEN)
/* A channel record: first, last, count, bytes, age_ms_max, bytes_max, trimmed. Stores written
 * before the retention mark hold 48-byte records, read with trimmed = 0. */
#define STORE_CHAN_LEN 56u
#define STORE_CHAN_LEN_V1 48u
#define STORE_EVENT_HEAD_LEN 8u
/* Room kept for the replication records when durable events are refused: the file system's
 * free bytes and the map's. The free bytes are checked again after this many bytes of events
 * (statvfs is a system call; the reserve covers what is written between two checks). */
#define STORE_DISK_RESERVE (2u * 1024u * 1024u)
#define STORE_MAP_RESERVE (4u * 1024u * 1024u)
#define STORE_DISK_CHECK_BYTES (256u * 1024u)
/* Domain bytes of the checksums: a value of one database never verifies in another. */
enum store_domain {
    STORE_DOM_META = 1,
    STORE_DOM_LOG = 2,
    STORE_DOM_EVENT = 3,
    STORE_DOM_CHAN = 4,
    STORE_DOM_STREAM = 5
};

struct store {
    MDB_env *env;
    MDB_dbi meta;
    MDB_dbi log;
    MDB_dbi events;
    MDB_dbi chans;
    MDB_dbi streams;
    MDB_txn *txn; /* the open batch, or NULL */
    /* The channel record the batch's event puts update, written back once at commit (or when
     * another channel's event comes) instead of read, checksummed and rewritten per event. */
    bool cache_valid;
    bool cache_dirty;
    uint64_t cache_channel;
    struct store_channel_info cache_info;
    int batch_error;
    int lock_fd;
    bool full;
    bool space_low;       /* durable events refused before the disk or map runs out */
    uint64_t disk_free;   /* bytes free on the file system at the last check */
    uint64_t since_check; /* bytes of events put since that check */
    bool created;
    uint64_t commits;
    uint64_t log_records;
    char dir[PATH_MAX];
};

/* ---- Errors ----------------------------------------------------------------------------- */

static int store_err(int mdb_rc)
{
    switch (mdb_rc) {
    case MDB_SUCCESS:
        return 0;
    case MDB_MAP_FULL:
    case ENOSPC:
    case EDQUOT:
        return TRONE_EFULL;
    case MDB_NOTFOUND:
        return TRONE_ENOENT;
    case MDB_CORRUPTED:
    case MDB_PAGE_NOTFOUND:
    case MDB_INVALID:
    case MDB_VERSION_MISMATCH:
        return TRONE_ECORRUPT;
    case ENOMEM:
        return TRONE_ENOMEM;
    default:
        return TRONE_EIO;
    }
}

/* ---- Keys and checksummed values -------------------------------------------------------- */

static void be64_store(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--) {
        p[i] = (uint8_t)v;
        v >>= 8;
    }
}

static uint64_t be64_load(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) {
        v = v << 8 | p[i];
    }
    return v;
}

static void sum_compute(uint8_t domain, const MDB_val *key, const uint8_t *payload, size_t size,
                        uint8_t out[STORE_SUM_LEN])
{
    crypto_generichash_state st;
    crypto_generichash_init(&st, NULL, 0, STORE_SUM_LEN);
    crypto_generichash_update(&st, &domain, 1);
    crypto_generichash_update(&st, key->mv_data, key->mv_size);
    crypto_generichash_update(&st, payload, size);
    crypto_generichash_final(&st, out, STORE_SUM_LEN);
}

/* Writes sum | head | body under key in one reserved value. */
static int value_put(MDB_txn *txn, MDB_dbi dbi, uint8_t domain, MDB_val *key, const uint8_t *head,
                     size_t head_size, const uint8_t *body, size_t body_size)
{
    if (body_size > STORE_VALUE_MAX) {
        return TRONE_ETOOBIG;
    }
    MDB_val val = {.mv_size = STORE_SUM_LEN + head_size + body_size, .mv_data = NULL};
    int rc = mdb_put(txn, dbi, key, &val, MDB_RESERVE);
    if (rc != 0) {
        return store_err(rc);
    }
    uint8_t *p = val.mv_data;
    if (head_size > 0) {
        memcpy(p + STORE_SUM_LEN, head, head_size);
    }
    if (body_size > 0) {
        memcpy(p + STORE_SUM_LEN + head_size, body, body_size);
    }
    sum_compute(domain, key, p + STORE_SUM_LEN, head_size + body_size, p);
    return 0;
}

/* Checks a value's checksum; sets the payload (after the sum). TRONE_ECORRUPT on mismatch. */
static int value_check(uint8_t domain, const MDB_val *key, const MDB_val *val,
                       const uint8_t **payload, size_t *size)
{
    if (val->mv_size < STORE_SUM_LEN) {
        return TRONE_ECORRUPT;
    }
    const uint8_t *p = val->mv_data;
    uint8_t sum[STORE_SUM_LEN];
    sum_compute(domain, key, p + STORE_SUM_LEN, val->mv_size - STORE_SUM_LEN, sum);
    if (sodium_memcmp(sum, p, STORE_SUM_LEN) != 0) {
        return TRONE_ECORRUPT;
    }
    *payload = p + STORE_SUM_LEN;
    *size = val->mv_size - STORE_SUM_LEN;
    return 0;
}

/* ---- Channel records -------------------------------------------------------------------- */

static void chan_key(uint8_t out[8], uint64_t channel) { be64_store(out, channel); }

static int chan_get(MDB_txn *txn, const struct store *s, uint64_t channel,
                    struct store_channel_info *info)
{
    uint8_t k[8];
    chan_key(k, channel);
    MDB_val key = {.mv_size = sizeof(k), .mv_data = k};
    MDB_val val;
    memset(info, 0, sizeof(*info));
    int rc = mdb_get(txn, s->chans, &key, &val);
    if (rc != 0) {
        return store_err(rc);
    }
    const uint8_t *p = NULL;
    size_t size = 0;
    rc = value_check(STORE_DOM_CHAN, &key, &val, &p, &size);
    if (rc != 0 || (size != STORE_CHAN_LEN && size != STORE_CHAN_LEN_V1)) {
        return TRONE_ECORRUPT;
    }
    info->first = buf_load_u64(p);
    info->last = buf_load_u64(p + 8);
    info->count = buf_load_u64(p + 16);
    info->bytes = buf_load_u64(p + 24);
    info->age_ms_max = buf_load_u64(p + 32);
    info->bytes_max = buf_load_u64(p + 40);
    info->trimmed = size == STORE_CHAN_LEN ? buf_load_u64(p + 48) : 0;
    return 0;
}

static int chan_put(MDB_txn *txn, const struct store *s, uint64_t channel,
                    const struct store_channel_info *info)
{
    uint8_t k[8];
    chan_key(k, channel);
    MDB_val key = {.mv_size = sizeof(k), .mv_data = k};
    uint8_t p[STORE_CHAN_LEN];
    buf_store_u64(p, info->first);
    buf_store_u64(p + 8, info->last);
    buf_store_u64(p + 16, info->count);
    buf_store_u64(p + 24, info->bytes);
    buf_store_u64(p + 32, info->age_ms_max);
    buf_store_u64(p + 40, info->bytes_max);
    buf_store_u64(p + 48, info->trimmed);
    return value_put(txn, s->chans, STORE_DOM_CHAN, &key, p, sizeof(p), NULL, 0);
}

/* Writes the cached channel record of the batch back (if changed). Sticky errors. */
static int chan_cache_flush(struct store *s)
{
    if (!s->cache_valid || !s->cache_dirty || s->txn == NULL) {
        return 0;
    }
    s->cache_dirty = false;
    int rc = chan_put(s->txn, s, s->cache_channel, &s->cache_info);
    if (rc != 0 && s->batch_error == 0) {
        s->batch_error = rc;
    }
    return rc;
}

static void chan_cache_drop(struct store *s)
{
    s->cache_valid = false;
    s->cache_dirty = false;
}

/* ---- Open and close --------------------------------------------------------------------- */

static int store_path(char *out, size_t size, const char *dir, const char *file)
{
    int n = snprintf(out, size, "%s/%s", dir, file);
    return n > 0 && (size_t)n < size ? 0 : TRONE_EINVAL;
}

/* Are pages first_free .. last all in LMDB's free list? Reads the free DB (dbi 0), whose
 * values are ID lists: a count, then the page numbers. */
static bool pages_all_free(MDB_env *env, uint64_t first, uint64_t last)
{
    uint64_t want = last - first + 1;
    uint8_t *seen = calloc((size_t)want, 1);
    MDB_txn *txn = NULL;
    MDB_cursor *cur = NULL;
    uint64_t found = 0;
    if (seen != NULL && mdb_txn_begin(env, NULL, MDB_RDONLY, &txn) == 0 &&
        mdb_cursor_open(txn, 0, &cur) == 0) {
        MDB_val key;
        MDB_val val;
        while (mdb_cursor_get(cur, &key, &val, MDB_NEXT) == 0) {
            if (val.mv_size < sizeof(size_t) || val.mv_size % sizeof(size_t) != 0) {
                found = 0;
                break;
            }
            const size_t *ids = val.mv_data;
            size_t n = ids[0];
            for (size_t k = 1; k <= n && k < val.mv_size / sizeof(size_t); k++) {
                if (ids[k] >= first && ids[k] <= last && seen[ids[k] - first] == 0) {
                    seen[ids[k] - first] = 1;
                    found++;
                }
            }
        }
    }
    if (cur != NULL) {
        mdb_cursor_close(cur);
    }
    if (txn != NULL) {
        mdb_txn_abort(txn);
    }
    free(seen);
    return found == want;
}

/* An existing data file must hold every page LMDB uses: reading a missing page through the
 * map would fault. LMDB's last page number also counts pages a transaction allocated and
 * freed without ever writing them (a SIGKILL right after such a commit leaves the file short
 * of them; found by test_durable_replay), so a shorter file is accepted when every page past
 * its end is in the free list: the file is extended with zeros over them first (so that
 * reading the free list cannot fault), and cut back if the check fails. */
static int open_check_size(struct store *s, const char *dir, const char *path, off_t file_size,
                           char *errmsg, size_t errmsg_size)
{
    MDB_envinfo info;
    MDB_stat st;
    if (mdb_env_info(s->env, &info) != 0 || mdb_env_stat(s->env, &st) != 0) {
        snprintf(errmsg, errmsg_size, "cannot read the header of %s/data.mdb", dir);
        return TRONE_ECORRUPT;
    }
    uint64_t needed = ((uint64_t)info.me_last_pgno + 1) * st.ms_psize;
    if ((uint64_t)file_size >= needed) {
        return 0;
    }
    uint64_t first_missing = (uint64_t)file_size / st.ms_psize;
    bool free_tail = (uint64_t)file_size % st.ms_psize == 0 && truncate(path, (off_t)needed) == 0;
    if (free_tail && pages_all_free(s->env, first_missing, info.me_last_pgno)) {
        return 0;
    }
    if (free_tail) {
        (void)truncate(path, file_size); /* as it was found */
    }
    snprintf(errmsg, errmsg_size,
             "data file %s/data.mdb is truncated (%lld bytes, its pages need %llu); "
             "rebuild it from the peers with --rebuild",
             dir, (long long)file_size, (unsigned long long)needed);
    return TRONE_ECORRUPT;
}

static int open_env(struct store *s, const struct store_config *c, bool *existed, char *errmsg,
                    size_t errmsg_size)
{
    char path[PATH_MAX];
    if (store_path(path, sizeof(path), c->dir, "data.mdb") != 0) {
        snprintf(errmsg, errmsg_size, "data directory path too long");
        return TRONE_EINVAL;
    }
    struct stat st;
    *existed = stat(path, &st) == 0;
    if (*existed && st.st_size == 0) {
        snprintf(errmsg, errmsg_size,
                 "data file %s is empty (truncated); rebuild it from the peers with --rebuild",
                 path);
        return TRONE_ECORRUPT;
    }
    int rc = mdb_env_create(&s->env);
    if (rc == 0) {
        rc = mdb_env_set_maxdbs(s->env, 5);
    }
    if (rc == 0) {
        rc = mdb_env_set_mapsize(s->env, c->map_size_bytes != 0 ? c->map_size_bytes
                                                                : STORE_MAP_SIZE_DEFAULT);
    }
    if (rc == 0) {
        rc = mdb_env_open(s->env, c->dir, (c->no_sync ? MDB_NOSYNC : 0) | MDB_NOTLS, 0600);
    }
    if (rc != 0) {
        int err = store_err(rc);
        snprintf(errmsg, errmsg_size, "cannot open data directory %s: %s%s", c->dir,
                 mdb_strerror(rc),
                 err == TRONE_ECORRUPT ? "; rebuild it from the peers with --rebuild" : "");
        return err == TRONE_ECORRUPT ? err : TRONE_EIO;
    }
    return *existed ? open_check_size(s, c->dir, path, st.st_size, errmsg, errmsg_size) : 0;
}

/* One process per data directory: LMDB alone would let two replicas share it. */
static int open_lock(struct store *s, const char *dir, char *errmsg, size_t errmsg_size)
{
    char path[PATH_MAX];
    if (store_path(path, sizeof(path), dir, "owner.lock") != 0) {
        snprintf(errmsg, errmsg_size, "data directory path too long");
        return TRONE_EINVAL;
    }
    s->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (s->lock_fd < 0) {
        snprintf(errmsg, errmsg_size, "cannot open %s: %s", path, strerror(errno));
        return TRONE_EIO;
    }
    if (flock(s->lock_fd, LOCK_EX | LOCK_NB) != 0) {
        snprintf(errmsg, errmsg_size, "data directory %s is in use by another process", dir);
        return TRONE_EBUSY;
    }
    return 0;
}

static int meta_check(const struct store_config *c, const uint8_t *p, size_t size, char *errmsg,
                      size_t errmsg_size)
{
    if (size != STORE_META_LEN) {
        snprintf(errmsg, errmsg_size, "data directory %s has a malformed meta record", c->dir);
        return TRONE_ECORRUPT;
    }
    uint32_t format = buf_load_u32(p);
    uint32_t replica = buf_load_u32(p + 4);
    if (format > STORE_FORMAT_VERSION) {
        snprintf(errmsg, errmsg_size,
                 "data directory %s: format version %u is newer than this build's %u", c->dir,
                 format, STORE_FORMAT_VERSION);
        return TRONE_ECONFIG;
    }
    if (replica != c->replica) {
        snprintf(errmsg, errmsg_size, "data directory %s belongs to replica %u, not %u", c->dir,
                 replica, c->replica);
        return TRONE_ECONFIG;
    }
    if (sodium_memcmp(p + 8, c->cluster_id, TRONE_HASH_LEN) != 0) {
        snprintf(errmsg, errmsg_size,
                 "data directory %s belongs to another cluster (its replica keys differ)", c->dir);
        return TRONE_ECONFIG;
    }
    return 0;
}

static uint64_t dbi_entries(MDB_txn *txn, MDB_dbi dbi)
{
    MDB_stat st;
    return mdb_stat(txn, dbi, &st) == 0 ? st.ms_entries : UINT64_MAX;
}

/* Opens the databases and checks (or, in a new store, writes) the meta record. */
static int open_meta(struct store *s, const struct store_config *c, bool existed, char *errmsg,
                     size_t errmsg_size)
{
    MDB_txn *txn = NULL;
    int rc = mdb_txn_begin(s->env, NULL, 0, &txn);
    if (rc == 0) {
        rc = mdb_dbi_open(txn, "meta", MDB_CREATE, &s->meta);
    }
    if (rc == 0) {
        rc = mdb_dbi_open(txn, "log", MDB_CREATE, &s->log);
    }
    if (rc == 0) {
        rc = mdb_dbi_open(txn, "events", MDB_CREATE, &s->events);
    }
    if (rc == 0) {
        rc = mdb_dbi_open(txn, "chans", MDB_CREATE, &s->chans);
    }
    if (rc == 0) {
        /* Added with durable channels; a store of an older build gets it empty (same format:
         * an older build ignores it). */
        rc = mdb_dbi_open(txn, "streams", MDB_CREATE, &s->streams);
    }
    if (rc != 0) {
        mdb_txn_abort(txn);
        snprintf(errmsg, errmsg_size, "cannot open the databases of %s: %s", c->dir,
                 mdb_strerror(rc));
        return store_err(rc) == TRONE_ECORRUPT ? TRONE_ECORRUPT : TRONE_EIO;
    }
    MDB_val key = {.mv_size = 4, .mv_data = "meta"};
    MDB_val val;
    rc = mdb_get(txn, s->meta, &key, &val);
    const uint8_t *p = NULL;
    size_t size = 0;
    if (rc == 0) {
        rc = value_check(STORE_DOM_META, &key, &val, &p, &size);
        if (rc != 0) {
            snprintf(errmsg, errmsg_size, "data directory %s: the meta record is corrupt", c->dir);
        } else {
            rc = meta_check(c, p, size, errmsg, errmsg_size);
        }
        if (rc != 0) {
            mdb_txn_abort(txn);
            return rc;
        }
        /* Committed, not aborted: the database handles opened here must outlive it. */
        rc = store_err(mdb_txn_commit(txn));
        if (rc != 0) {
            snprintf(errmsg, errmsg_size, "cannot open the databases of %s", c->dir);
        }
        return rc;
    }
    if (rc != MDB_NOTFOUND ||
        (existed && (dbi_entries(txn, s->log) != 0 || dbi_entries(txn, s->events) != 0))) {
        mdb_txn_abort(txn);
        snprintf(errmsg, errmsg_size, "data directory %s has data but no meta record", c->dir);
        return TRONE_ECORRUPT;
    }
    uint8_t meta[STORE_META_LEN];
    buf_store_u32(meta, STORE_FORMAT_VERSION);
    buf_store_u32(meta + 4, c->replica);
    memcpy(meta + 8, c->cluster_id, TRONE_HASH_LEN);
    rc = value_put(txn, s->meta, STORE_DOM_META, &key, meta, sizeof(meta), NULL, 0);
    rc = rc == 0 ? store_err(mdb_txn_commit(txn)) : (mdb_txn_abort(txn), rc);
    if (rc != 0) {
        snprintf(errmsg, errmsg_size, "cannot initialise data directory %s: %s", c->dir,
                 trone_strerror(rc));
        return rc;
    }
    s->created = true;
    return 0;
}

static int count_record(void *ctx, uint8_t kind, uint64_t seq, const uint8_t *data, size_t size)
{
    (void)kind;
    (void)seq;
    (void)data;
    (void)size;
    (*(uint64_t *)ctx)++;
    return 0;
}

int store_open(const struct store_config *config, struct store **out, char *errmsg,
               size_t errmsg_size)
{
    *out = NULL;
    if (sodium_init() < 0) {
        snprintf(errmsg, errmsg_size, "libsodium failed to initialise");
        return TRONE_EIO;
    }
    struct store *s = calloc(1, sizeof(*s));
    if (s == NULL) {
        snprintf(errmsg, errmsg_size, "out of memory");
        return TRONE_ENOMEM;
    }
    s->lock_fd = -1;
    snprintf(s->dir, sizeof(s->dir), "%s", config->dir);
    bool existed = false;
    int rc = open_lock(s, config->dir, errmsg, errmsg_size);
    if (rc == 0) {
        rc = open_env(s, config, &existed, errmsg, errmsg_size);
    }
    if (rc == 0) {
        rc = open_meta(s, config, existed, errmsg, errmsg_size);
    }
    if (rc == 0) {
        uint64_t count = 0;
        rc = store_log_each(s, count_record, &count);
        s->log_records = count;
        if (rc != 0) {
            snprintf(errmsg, errmsg_size,
                     "data directory %s: the replication log is %s; rebuild it from the peers "
                     "with --rebuild",
                     config->dir, rc == TRONE_ECORRUPT ? "corrupt" : "unreadable");
        }
    }
    if (rc != 0) {
        store_close(s);
        return rc;
    }
    *out = s;
    return 0;
}

void store_close(struct store *s)
{
    if (s == NULL) {
        return;
    }
    if (s->txn != NULL) {
        mdb_txn_abort(s->txn);
    }
    if (s->env != NULL) {
        mdb_env_close(s->env);
    }
    if (s->lock_fd >= 0) {
        close(s->lock_fd); /* releases the flock */
    }
    free(s);
}

int store_wipe(const char *dir, char *errmsg, size_t errmsg_size)
{
    static const char *const files[] = {"data.mdb", "lock.mdb"};
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        char path[PATH_MAX];
        if (store_path(path, sizeof(path), dir, files[i]) != 0) {
            snprintf(errmsg, errmsg_size, "data directory path too long");
            return TRONE_EINVAL;
        }
        if (unlink(path) != 0 && errno != ENOENT) {
            snprintf(errmsg, errmsg_size, "cannot remove %s: %s", path, strerror(errno));
            return TRONE_EIO;
        }
    }
    return 0;
}

void store_stats_get(const struct store *s, struct store_stats *out)
{
    memset(out, 0, sizeof(*out));
    out->created = s->created;
    out->full = s->full;
    out->log_records = s->log_records;
    out->commits = s->commits;
    MDB_txn *txn = NULL;
    if (mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn) == 0) {
        out->events = dbi_entries(txn, s->events);
        mdb_txn_abort(txn);
    }
}

bool store_full(const struct store *s) { return s->full || s->space_low; }

/* Bytes free on the file system of the store, UINT64_MAX if unknown. */
static uint64_t disk_free_bytes(const struct store *s)
{
    struct statvfs st;
    if (statvfs(s->dir, &st) != 0) {
        return UINT64_MAX;
    }
    return (uint64_t)st.f_bavail * st.f_frsize;
}

/* Bytes of the map in use (committed pages), and its size. */
static void map_usage(const struct store *s, uint64_t *used, uint64_t *size)
{
    MDB_envinfo info;
    MDB_stat st;
    if (mdb_env_info(s->env, &info) != 0 || mdb_env_stat(s->env, &st) != 0) {
        *used = 0;
        *size = UINT64_MAX;
        return;
    }
    *used = ((uint64_t)info.me_last_pgno + 1u) * st.ms_psize;
    *size = info.me_mapsize;
}

int store_event_room(struct store *s, size_t size)
{
    if (s->full || s->space_low) {
        return TRONE_EFULL;
    }
    /* LMDB needs pages beyond the value (branch pages, copy-on-write of the path, the free
     * list): count each event three times over, plus a fixed reserve. */
    uint64_t need = 3u * (uint64_t)size + 4096u;
    uint64_t used = 0;
    uint64_t map = 0;
    map_usage(s, &used, &map);
    if (map != UINT64_MAX && used + need + STORE_MAP_RESERVE > map) {
        s->space_low = true;
        return TRONE_EFULL;
    }
    s->since_check += need;
    if (s->disk_free == 0 || s->since_check >= STORE_DISK_CHECK_BYTES) {
        s->disk_free = disk_free_bytes(s);
        s->since_check = 0;
    }
    if (s->disk_free != UINT64_MAX && s->disk_free < STORE_DISK_RESERVE + s->since_check) {
        s->space_low = true;
        return TRONE_EFULL;
    }
    return 0;
}

bool store_space_refresh(struct store *s)
{
    if (!s->space_low && !s->full) {
        return false;
    }
    uint64_t used = 0;
    uint64_t map = 0;
    map_usage(s, &used, &map);
    uint64_t free_bytes = disk_free_bytes(s);
    s->disk_free = free_bytes;
    s->since_check = 0;
    bool map_room = map == UINT64_MAX || used + 2u * STORE_MAP_RESERVE <= map;
    bool disk_room = free_bytes == UINT64_MAX || free_bytes >= 2u * STORE_DISK_RESERVE;
    if (map_room && disk_room) {
        s->space_low = false;
        s->full = false;
        return true;
    }
    return false;
}

/* ---- Batches ------------------------------------------------------------------------------ */

int store_batch_begin(struct store *s)
{
    if (s->txn != NULL) {
        return TRONE_EBUSY;
    }
    int rc = mdb_txn_begin(s->env, NULL, 0, &s->txn);
    if (rc != 0) {
        s->txn = NULL;
        return store_err(rc);
    }
    s->batch_error = 0;
    chan_cache_drop(s);
    return 0;
}

void store_batch_abort(struct store *s)
{
    chan_cache_drop(s);
    if (s->txn != NULL) {
        mdb_txn_abort(s->txn);
        s->txn = NULL;
    }
    s->batch_error = 0;
}

/* LMDB reports a write cut short by a full file system as EIO, not ENOSPC: after a failed
 * commit, less than STORE_SPACE_LOW free bytes means the disk is full. */
#define STORE_SPACE_LOW (1024u * 1024u)
static bool disk_nearly_full(const struct store *s)
{
    struct statvfs st;
    if (statvfs(s->dir, &st) != 0) {
        return false;
    }
    return (uint64_t)st.f_bavail * st.f_frsize < STORE_SPACE_LOW;
}

int store_batch_commit(struct store *s)
{
    if (s->txn == NULL) {
        return TRONE_EINVAL;
    }
    (void)chan_cache_flush(s);
    chan_cache_drop(s);
    int rc = s->batch_error;
    if (rc != 0) {
        mdb_txn_abort(s->txn);
    } else {
        rc = store_err(mdb_txn_commit(s->txn)); /* frees the txn, even on failure */
        rc = rc == TRONE_EIO && disk_nearly_full(s) ? TRONE_EFULL : rc;
    }
    s->txn = NULL;
    s->batch_error = 0;
    if (rc == TRONE_EFULL) {
        s->full = true;
    }
    if (rc == 0) {
        s->commits++;
    }
    return rc;
}

static int batch_fail(struct store *s, int rc)
{
    if (rc != 0 && s->batch_error == 0) {
        s->batch_error = rc;
    }
    return rc;
}

/* ---- Replication log ---------------------------------------------------------------------- */

static void log_key(uint8_t out[STORE_LOG_KEY_LEN], uint8_t kind, uint64_t seq)
{
    out[0] = kind;
    be64_store(out + 1, seq);
}

int store_log_put(struct store *s, uint8_t kind, uint64_t seq, const uint8_t *data, size_t size)
{
    if (s->txn == NULL) {
        return TRONE_EINVAL;
    }
    if (s->batch_error != 0) {
        return s->batch_error;
    }
    uint8_t k[STORE_LOG_KEY_LEN];
    log_key(k, kind, seq);
    MDB_val key = {.mv_size = sizeof(k), .mv_data = k};
    return batch_fail(s, value_put(s->txn, s->log, STORE_DOM_LOG, &key, NULL, 0, data, size));
}

int store_log_drop_upto(struct store *s, uint8_t kind, uint64_t seq_max)
{
    if (s->txn == NULL) {
        return TRONE_EINVAL;
    }
    if (s->batch_error != 0) {
        return s->batch_error;
    }
    MDB_cursor *cur = NULL;
    int rc = mdb_cursor_open(s->txn, s->log, &cur);
    if (rc != 0) {
        return batch_fail(s, store_err(rc));
    }
    uint8_t k[STORE_LOG_KEY_LEN];
    log_key(k, kind, 0);
    MDB_val key = {.mv_size = sizeof(k), .mv_data = k};
    MDB_val val;
    uint64_t bound = dbi_entries(s->txn, s->log);
    rc = mdb_cursor_get(cur, &key, &val, MDB_SET_RANGE);
    for (uint64_t i = 0; i <= bound && rc == 0; i++) {
        const uint8_t *p = key.mv_data;
        if (key.mv_size != STORE_LOG_KEY_LEN || p[0] != kind || be64_load(p + 1) > seq_max) {
            break;
        }
        memcpy(k, key.mv_data, STORE_LOG_KEY_LEN);
        rc = mdb_cursor_del(cur, 0);
        if (rc == 0) {
            /* Re-seek from the deleted key: the cursor's position after a delete differs
             * between LMDB versions. */
            key.mv_size = sizeof(k);
            key.mv_data = k;
            rc = mdb_cursor_get(cur, &key, &val, MDB_SET_RANGE);
        }
    }
    mdb_cursor_close(cur);
    return batch_fail(s, rc == MDB_NOTFOUND ? 0 : store_err(rc));
}

/* Runs in the open batch when there is one (so a batch sees its own writes), else in a read
 * transaction of its own. */
static int read_txn(struct store *s, MDB_txn **txn, bool *own)
{
    *own = s->txn == NULL;
    if (!*own) {
        *txn = s->txn;
        return 0;
    }
    return store_err(mdb_txn_begin(s->env, NULL, MDB_RDONLY, txn));
}

int store_log_each(struct store *s, store_log_cb cb, void *ctx)
{
    MDB_txn *txn = NULL;
    bool own = false;
    int rc = read_txn(s, &txn, &own);
    if (rc != 0) {
        return rc;
    }
    MDB_cursor *cur = NULL;
    rc = store_err(mdb_cursor_open(txn, s->log, &cur));
    MDB_val key;
    MDB_val val;
    uint64_t bound = dbi_entries(txn, s->log);
    int mrc = rc == 0 ? mdb_cursor_get(cur, &key, &val, MDB_FIRST) : MDB_NOTFOUND;
    for (uint64_t i = 0; i <= bound && rc == 0 && mrc == 0; i++) {
        const uint8_t *p = NULL;
        size_t size = 0;
        if (key.mv_size != STORE_LOG_KEY_LEN) {
            rc = TRONE_ECORRUPT;
            break;
        }
        rc = value_check(STORE_DOM_LOG, &key, &val, &p, &size);
        if (rc == 0) {
            const uint8_t *k = key.mv_data;
            rc = cb(ctx, k[0], be64_load(k + 1), p, size);
        }
        if (rc == 0) {
            mrc = mdb_cursor_get(cur, &key, &val, MDB_NEXT);
        }
    }
    if (rc == 0 && mrc != MDB_NOTFOUND && mrc != 0) {
        rc = store_err(mrc);
    }
    if (cur != NULL) {
        mdb_cursor_close(cur);
    }
    if (own) {
        mdb_txn_abort(txn);
    }
    return rc;
}

/* ---- Durable events ----------------------------------------------------------------------- */

static void event_key(uint8_t out[STORE_EVENT_KEY_LEN], uint64_t channel, uint64_t position)
{
    be64_store(out, channel);
    be64_store(out + 8, position);
}

int store_event_put(struct store *s, uint64_t channel, uint64_t position, uint64_t time_ms,
                    const uint8_t *data, size_t size)
{
    if (s->txn == NULL) {
        return TRONE_EINVAL;
    }
    if (s->full) {
        return TRONE_EFULL; /* refused whole, the batch stays usable */
    }
    if (s->batch_error != 0) {
        return s->batch_error;
    }
    if (!s->cache_valid || s->cache_channel != channel) {
        if (chan_cache_flush(s) != 0) {
            return s->batch_error;
        }
        int rc = chan_get(s->txn, s, channel, &s->cache_info);
        if (rc != 0 && rc != TRONE_ENOENT) {
            chan_cache_drop(s);
            return batch_fail(s, rc);
        }
        s->cache_valid = true;
        s->cache_dirty = false;
        s->cache_channel = channel;
    }
    struct store_channel_info info = s->cache_info;
    if (position == 0 || position <= info.last) {
        return TRONE_EINVAL;
    }
    int rc = 0;
    uint8_t k[STORE_EVENT_KEY_LEN];
    event_key(k, channel, position);
    MDB_val key = {.mv_size = sizeof(k), .mv_data = k};
    uint8_t head[STORE_EVENT_HEAD_LEN];
    buf_store_u64(head, time_ms);
    rc = value_put(s->txn, s->events, STORE_DOM_EVENT, &key, head, sizeof(head), data, size);
    if (rc != 0) {
        return batch_fail(s, rc);
    }
    if (info.count == 0) {
        info.first = position;
    }
    info.last = position;
    info.count++;
    info.bytes += size;
    s->cache_info = info;
    s->cache_dirty = true; /* written back at commit */
    return 0;
}

int store_event_insert(struct store *s, uint64_t channel, uint64_t position, uint64_t time_ms,
                       const uint8_t *data, size_t size)
{
    if (s->txn == NULL || position == 0) {
        return TRONE_EINVAL;
    }
    if (s->full) {
        return TRONE_EFULL; /* refused whole, the batch stays usable */
    }
    if (s->batch_error != 0) {
        return s->batch_error;
    }
    struct store_channel_info info;
    int rc = chan_get(s->txn, s, channel, &info);
    if (rc != 0 && rc != TRONE_ENOENT) {
        return batch_fail(s, rc);
    }
    if (position <= info.trimmed) {
        return TRONE_EEXIST; /* retention deleted it: taking it back would undo retention */
    }
    uint8_t k[STORE_EVENT_KEY_LEN];
    event_key(k, channel, position);
    MDB_val key = {.mv_size = sizeof(k), .mv_data = k};
    MDB_val old;
    int mrc = mdb_get(s->txn, s->events, &key, &old);
    if (mrc == 0) {
        return TRONE_EEXIST;
    }
    if (mrc != MDB_NOTFOUND) {
        return batch_fail(s, store_err(mrc));
    }
    uint8_t head[STORE_EVENT_HEAD_LEN];
    buf_store_u64(head, time_ms);
    rc = value_put(s->txn, s->events, STORE_DOM_EVENT, &key, head, sizeof(head), data, size);
    if (rc != 0) {
        return batch_fail(s, rc);
    }
    if (info.count == 0 || position < info.first) {
        info.first = position;
    }
    info.last = position > info.last ? position : info.last;
    info.count++;
    info.bytes += size;
    return batch_fail(s, chan_put(s->txn, s, channel, &info));
}

static int event_decode(const MDB_val *key, const MDB_val *val, uint64_t *time_ms,
                        const uint8_t **data, size_t *size);

int store_event_drop_upto(struct store *s, uint64_t channel, uint64_t position_max,
                          uint32_t delete_max, uint32_t *deleted)
{
    *deleted = 0;
    if (s->txn == NULL) {
        return TRONE_EINVAL;
    }
    if (s->batch_error != 0) {
        return s->batch_error;
    }
    if (s->cache_valid && s->cache_channel == channel) {
        /* The cached record would overwrite what this writes: write it back first. */
        if (chan_cache_flush(s) != 0) {
            return s->batch_error;
        }
        chan_cache_drop(s);
    }
    struct store_channel_info info;
    int rc = chan_get(s->txn, s, channel, &info);
    if (rc == TRONE_ENOENT || (rc == 0 && (info.count == 0 || info.first > position_max))) {
        return 0;
    }
    if (rc != 0) {
        return batch_fail(s, rc);
    }
    MDB_cursor *cur = NULL;
    rc = store_err(mdb_cursor_open(s->txn, s->events, &cur));
    if (rc != 0) {
        return batch_fail(s, rc);
    }
    uint8_t k[STORE_EVENT_KEY_LEN];
    event_key(k, channel, info.first);
    MDB_val key = {.mv_size = sizeof(k), .mv_data = k};
    MDB_val val;
    int mrc = mdb_cursor_get(cur, &key, &val, MDB_SET_RANGE);
    while (*deleted < delete_max && rc == 0 && mrc == 0 && be64_load(key.mv_data) == channel &&
           be64_load((const uint8_t *)key.mv_data + 8) <= position_max) {
        uint64_t time_ms = 0;
        const uint8_t *data = NULL;
        size_t size = 0;
        rc = event_decode(&key, &val, &time_ms, &data, &size);
        if (rc != 0) {
            break;
        }
        memcpy(k, key.mv_data, STORE_EVENT_KEY_LEN);
        rc = store_err(mdb_cursor_del(cur, 0));
        (*deleted)++;
        info.count--;
        info.bytes -= size <= info.bytes ? size : info.bytes;
        key.mv_size = sizeof(k);
        key.mv_data = k;
        mrc = rc == 0 ? mdb_cursor_get(cur, &key, &val, MDB_SET_RANGE) : MDB_NOTFOUND;
    }
    bool more = rc == 0 && mrc == 0 && be64_load(key.mv_data) == channel;
    info.first = more && info.count > 0 ? be64_load((const uint8_t *)key.mv_data + 8) : 0;
    mdb_cursor_close(cur);
    if (rc == 0 && mrc != 0 && mrc != MDB_NOTFOUND) {
        rc = store_err(mrc);
    }
    if (rc == 0 && *deleted > 0) {
        rc = chan_put(s->txn, s, channel, &info);
    }
    return batch_fail(s, rc);
}

int store_event_hole(struct store *s, uint64_t channel, uint64_t from, uint32_t scan_max,
                     uint64_t *hole, uint64_t *hole_end)
{
    if (from == 0) {
        from = 1;
    }
    MDB_txn *txn = NULL;
    bool own = false;
    int rc = read_txn(s, &txn, &own);
    if (rc != 0) {
        return rc;
    }
    MDB_cursor *cur = NULL;
    rc = store_err(mdb_cursor_open(txn, s->events, &cur));
    uint8_t k[STORE_EVENT_KEY_LEN];
    event_key(k, channel, from);
    MDB_val key = {.mv_size = sizeof(k), .mv_data = k};
    MDB_val val;
    uint64_t expect = from; /* the next position that would continue the run */
    int mrc = rc == 0 ? mdb_cursor_get(cur, &key, &val, MDB_SET_RANGE) : MDB_NOTFOUND;
    *hole = from;
    *hole_end = UINT64_MAX;
    for (uint32_t scanned = 0; rc == 0 && mrc == 0; scanned++) {
        if (key.mv_size != STORE_EVENT_KEY_LEN || be64_load(key.mv_data) != channel) {
            break; /* past the channel: the hole runs to the end */
        }
        uint64_t position = be64_load((const uint8_t *)key.mv_data + 8);
        if (position != expect) {
            *hole_end = position; /* a hole [expect, position) */
            break;
        }
        if (scanned == scan_max || expect == UINT64_MAX) {
            *hole_end = expect; /* not looked at yet (or the very last position) */
            rc = TRONE_EBUSY;
            break;
        }
        expect++;
        mrc = mdb_cursor_get(cur, &key, &val, MDB_NEXT);
    }
    *hole = expect;
    if (cur != NULL) {
        mdb_cursor_close(cur);
    }
    if (own) {
        mdb_txn_abort(txn);
    }
    return rc;
}

/* Decodes an event value: time and payload. */
static int event_decode(const MDB_val *key, const MDB_val *val, uint64_t *time_ms,
                        const uint8_t **data, size_t *size)
{
    const uint8_t *p = NULL;
    size_t n = 0;
    int rc = value_check(STORE_DOM_EVENT, key, val, &p, &n);
    if (rc != 0 || n < STORE_EVENT_HEAD_LEN || key->mv_size != STORE_EVENT_KEY_LEN) {
        return TRONE_ECORRUPT;
    }
    *time_ms = buf_load_u64(p);
    *data = p + STORE_EVENT_HEAD_LEN;
    *size = n - STORE_EVENT_HEAD_LEN;
    return 0;
}

int store_event_read(struct store *s, uint64_t channel, uint64_t position, uint32_t count_max,
                     store_event_cb cb, void *ctx)
{
    MDB_txn *txn = NULL;
    bool own = false;
    int rc = read_txn(s, &txn, &own);
    if (rc != 0) {
        return rc;
    }
    MDB_cursor *cur = NULL;
    rc = store_err(mdb_cursor_open(txn, s->events, &cur));
    uint8_t k[STORE_EVENT_KEY_LEN];
    event_key(k, channel, position);
    MDB_val key = {.mv_size = sizeof(k), .mv_data = k};
    MDB_val val;
    int mrc = rc == 0 ? mdb_cursor_get(cur, &key, &val, MDB_SET_RANGE) : MDB_NOTFOUND;
    for (uint32_t i = 0; i < count_max && rc == 0 && mrc == 0; i++) {
        uint64_t time_ms = 0;
        const uint8_t *data = NULL;
        size_t size = 0;
        rc = event_decode(&key, &val, &time_ms, &data, &size);
        if (rc != 0 || be64_load(key.mv_data) != channel) {
            break;
        }
        rc = cb(ctx, be64_load((const uint8_t *)key.mv_data + 8), time_ms, data, size);
        if (rc == 0) {
            mrc = mdb_cursor_get(cur, &key, &val, MDB_NEXT);
        }
    }
    if (rc == 0 && mrc != MDB_NOTFOUND && mrc != 0) {
        rc = store_err(mrc);
    }
    if (cur != NULL) {
        mdb_cursor_close(cur);
    }
    if (own) {
        mdb_txn_abort(txn);
    }
    return rc;
}

int store_channel_info(struct store *s, uint64_t channel, struct store_channel_info *out)
{
    if (s->txn != NULL && s->cache_valid && s->cache_channel == channel) {
        *out = s->cache_info;
        return 0;
    }
    MDB_txn *txn = NULL;
    bool own = false;
    int rc = read_txn(s, &txn, &own);
    if (rc != 0) {
        return rc;
    }
    rc = chan_get(txn, s, channel, out);
    if (own) {
        mdb_txn_abort(txn);
    }
    return rc;
}

int store_retention_set(struct store *s, uint64_t channel, uint64_t age_ms_max, uint64_t bytes_max)
{
    if (s->txn != NULL) {
        /* Inside the open batch: committed (or rolled back) with it. */
        if (s->batch_error != 0) {
            return s->batch_error;
        }
        if (chan_cache_flush(s) != 0) {
            return s->batch_error;
        }
        chan_cache_drop(s);
        struct store_channel_info info;
        int rc = chan_get(s->txn, s, channel, &info);
        if (rc == 0 && info.age_ms_max == age_ms_max && info.bytes_max == bytes_max) {
            return 0;
        }
        if (rc == 0 || rc == TRONE_ENOENT) {
            info.age_ms_max = age_ms_max;
            info.bytes_max = bytes_max;
            rc = chan_put(s->txn, s, channel, &info);
        }
        return batch_fail(s, rc);
    }
    MDB_txn *txn = NULL;
    int rc = store_err(mdb_txn_begin(s->env, NULL, 0, &txn));
    if (rc != 0) {
        return rc;
    }
    struct store_channel_info info;
    rc = chan_get(txn, s, channel, &info);
    if (rc == 0 || rc == TRONE_ENOENT) {
        info.age_ms_max = age_ms_max;
        info.bytes_max = bytes_max;
        rc = chan_put(txn, s, channel, &info);
    }
    if (rc != 0) {
        mdb_txn_abort(txn);
        return rc;
    }
    return store_err(mdb_txn_commit(txn));
}

/* Records that retention deleted position: the anti-entropy never fetches it back (peers whose
 * retention step has not run yet still hold it; fetching from them would keep deleted events
 * going round between replicas). */
static void retention_mark(struct store_channel_info *info, uint64_t position)
{
    info->trimmed = position > info->trimmed ? position : info->trimmed;
}

/* Deletes the oldest events of one channel while they break its limits, at most *budget. */
static int retention_channel(struct store *s, MDB_txn *txn, uint64_t channel,
                             struct store_channel_info *info, uint64_t now_ms, uint32_t *budget)
{
    MDB_cursor *cur = NULL;
    int rc = store_err(mdb_cursor_open(txn, s->events, &cur));
    if (rc != 0) {
        return rc;
    }
    uint8_t k[STORE_EVENT_KEY_LEN];
    event_key(k, channel, info->first);
    MDB_val key = {.mv_size = sizeof(k), .mv_data = k};
    MDB_val val;
    int mrc = mdb_cursor_get(cur, &key, &val, MDB_SET_RANGE);
    while (*budget > 0 && rc == 0 && mrc == 0 && be64_load(key.mv_data) == channel) {
        uint64_t time_ms = 0;
        const uint8_t *data = NULL;
        size_t size = 0;
        rc = event_decode(&key, &val, &time_ms, &data, &size);
        bool too_old = info->age_ms_max != 0 && time_ms + info->age_ms_max < now_ms;
        bool too_big = info->bytes_max != 0 && info->bytes > info->bytes_max;
        if (rc != 0 || (!too_old && !too_big)) {
            break;
        }
        memcpy(k, key.mv_data, STORE_EVENT_KEY_LEN);
        rc = store_err(mdb_cursor_del(cur, 0));
        (*budget)--;
        retention_mark(info, be64_load(k + 8));
        info->count--;
        info->bytes -= size <= info->bytes ? size : info->bytes;
        key.mv_size = sizeof(k);
        key.mv_data = k;
        mrc = rc == 0 ? mdb_cursor_get(cur, &key, &val, MDB_SET_RANGE) : MDB_NOTFOUND;
    }
    bool more = rc == 0 && mrc == 0 && be64_load(key.mv_data) == channel;
    info->first = more ? be64_load((const uint8_t *)key.mv_data + 8) : 0;
    if (info->count == 0) {
        info->first = 0;
    }
    mdb_cursor_close(cur);
    return rc;
}

/* Streams of one group that the size rule looks at per step; a group with more streams has
 * its size rule applied to the first ones only (in id order, the oldest epochs first). */
#define STORE_GROUP_STREAMS_MAX 1024u

struct group_stream {
    uint64_t channel;
    uint64_t first_ms; /* time of its oldest event; UINT64_MAX when empty */
    bool changed;
    struct store_channel_info info;
};

/* The time of channel's oldest event (UINT64_MAX if it holds none). */
static int group_first_ms(MDB_txn *txn, const struct store *s, struct group_stream *g)
{
    g->first_ms = UINT64_MAX;
    if (g->info.count == 0) {
        return 0;
    }
    uint8_t k[STORE_EVENT_KEY_LEN];
    event_key(k, g->channel, g->info.first);
    MDB_val key = {.mv_size = sizeof(k), .mv_data = k};
    MDB_val val;
    int rc = mdb_get(txn, s->events, &key, &val);
    if (rc != 0) {
        return rc == MDB_NOTFOUND ? TRONE_ECORRUPT : store_err(rc);
    }
    const uint8_t *data = NULL;
    size_t size = 0;
    return event_decode(&key, &val, &g->first_ms, &data, &size);
}

/* The size rule of a durable channel (a group): its limit (bytes_max, the same in each of its
 * streams) bounds the bytes of ALL its streams together, so a publisher that restarts (a new
 * stream per epoch) or many publishers do not multiply it. The oldest event of the group, by
 * time, goes first, whatever its stream. */
static int retention_group(struct store *s, MDB_txn *txn, struct group_stream *g, uint32_t n,
                           uint32_t *budget)
{
    uint64_t total = 0;
    uint64_t limit = 0;
    for (uint32_t i = 0; i < n; i++) {
        total += g[i].info.bytes;
        limit = g[i].info.bytes_max > limit ? g[i].info.bytes_max : limit;
    }
    if (limit == 0 || total <= limit) {
        return 0;
    }
    int rc = 0;
    for (uint32_t i = 0; i < n && rc == 0; i++) {
        rc = group_first_ms(txn, s, &g[i]);
    }
    while (rc == 0 && total > limit && *budget > 0) {
        uint32_t oldest = n;
        for (uint32_t i = 0; i < n; i++) {
            if (g[i].first_ms != UINT64_MAX &&
                (oldest == n || g[i].first_ms < g[oldest].first_ms)) {
                oldest = i;
            }
        }
        if (oldest == n) {
            break;
        }
        struct group_stream *o = &g[oldest];
        uint8_t k[STORE_EVENT_KEY_LEN];
        event_key(k, o->channel, o->info.first);
        MDB_val key = {.mv_size = sizeof(k), .mv_data = k};
        MDB_val val;
        rc = store_err(mdb_get(txn, s->events, &key, &val));
        uint64_t time_ms = 0;
        const uint8_t *data = NULL;
        size_t size = 0;
        if (rc == 0) {
            rc = event_decode(&key, &val, &time_ms, &data, &size);
        }
        if (rc == 0) {
            rc = store_err(mdb_del(txn, s->events, &key, NULL));
        }
        if (rc != 0) {
            break;
        }
        (*budget)--;
        retention_mark(&o->info, o->info.first);
        total -= size <= total ? size : total;
        o->info.count--;
        o->info.bytes -= size <= o->info.bytes ? size : o->info.bytes;
        o->changed = true;
        /* Its next oldest: the next key of the same channel. */
        MDB_cursor *cur = NULL;
        rc = store_err(mdb_cursor_open(txn, s->events, &cur));
        int mrc = rc == 0 ? mdb_cursor_get(cur, &key, &val, MDB_SET_RANGE) : MDB_NOTFOUND;
        bool more =
            rc == 0 && mrc == 0 && o->info.count > 0 && be64_load(key.mv_data) == o->channel;
        o->info.first = more ? be64_load((const uint8_t *)key.mv_data + 8) : 0;
        if (cur != NULL) {
            mdb_cursor_close(cur);
        }
        if (rc == 0 && mrc != 0 && mrc != MDB_NOTFOUND) {
            rc = store_err(mrc);
        }
        if (rc == 0) {
            rc = more ? group_first_ms(txn, s, o) : 0;
            o->first_ms = more ? o->first_ms : UINT64_MAX;
        }
    }
    for (uint32_t i = 0; i < n && rc == 0; i++) {
        if (g[i].changed) {
            rc = chan_put(txn, s, g[i].channel, &g[i].info);
        }
    }
    return rc;
}

/* Applies the size rule to every group of the stream index, within budget. */
static int retention_groups(struct store *s, MDB_txn *txn, uint32_t *budget)
{
    struct group_stream *g = malloc(sizeof(*g) * STORE_GROUP_STREAMS_MAX);
    if (g == NULL) {
        return TRONE_ENOMEM;
    }
    MDB_cursor *cur = NULL;
    int rc = store_err(mdb_cursor_open(txn, s->streams, &cur));
    MDB_val key;
    MDB_val val;
    int mrc = rc == 0 ? mdb_cursor_get(cur, &key, &val, MDB_FIRST) : MDB_NOTFOUND;
    uint64_t group = 0;
    uint32_t n = 0;
    uint64_t bound = rc == 0 ? dbi_entries(txn, s->streams) : 0;
    for (uint64_t i = 0; i <= bound && rc == 0 && *budget > 0; i++) {
        bool end = mrc != 0;
        if (!end && key.mv_size != STORE_EVENT_KEY_LEN) {
            rc = TRONE_ECORRUPT;
            break;
        }
        uint64_t this_group = end ? 0 : be64_load(key.mv_data);
        if (end || this_group != group) {
            if (n > 0) {
                rc = retention_group(s, txn, g, n, budget);
            }
            n = 0;
            group = this_group;
            if (end || rc != 0) {
                break;
            }
        }
        if (n < STORE_GROUP_STREAMS_MAX) {
            memset(&g[n], 0, sizeof(g[n]));
            g[n].channel = be64_load((const uint8_t *)key.mv_data + 8);
            int crc = chan_get(txn, s, g[n].channel, &g[n].info);
            if (crc == 0) {
                n++;
            } else if (crc != TRONE_ENOENT) {
                rc = crc;
            }
        }
        mrc = rc == 0 ? mdb_cursor_get(cur, &key, &val, MDB_NEXT) : mrc;
    }
    if (rc == 0 && mrc != 0 && mrc != MDB_NOTFOUND) {
        rc = store_err(mrc);
    }
    if (cur != NULL) {
        mdb_cursor_close(cur);
    }
    free(g);
    return rc;
}

int store_retention_step(struct store *s, uint64_t now_ms, uint32_t delete_max, uint32_t *deleted)
{
    *deleted = 0;
    if (s->txn != NULL) {
        return TRONE_EBUSY;
    }
    MDB_txn *txn = NULL;
    int rc = store_err(mdb_txn_begin(s->env, NULL, 0, &txn));
    MDB_cursor *chans = NULL;
    if (rc == 0) {
        rc = store_err(mdb_cursor_open(txn, s->chans, &chans));
    }
    uint32_t budget = delete_max;
    if (rc == 0) {
        rc = retention_groups(s, txn, &budget); /* the size rule, per durable channel */
    }
    MDB_val key;
    MDB_val val;
    uint64_t bound = rc == 0 ? dbi_entries(txn, s->chans) : 0;
    int mrc = rc == 0 ? mdb_cursor_get(chans, &key, &val, MDB_FIRST) : MDB_NOTFOUND;
    for (uint64_t i = 0; i <= bound && rc == 0 && mrc == 0 && budget > 0; i++) {
        uint64_t channel = key.mv_size == 8 ? be64_load(key.mv_data) : 0;
        struct store_channel_info info;
        rc = key.mv_size == 8 ? chan_get(txn, s, channel, &info) : TRONE_ECORRUPT;
        uint32_t before = budget;
        if (rc == 0 && info.count > 0 && (info.age_ms_max != 0 || info.bytes_max != 0)) {
            rc = retention_channel(s, txn, channel, &info, now_ms, &budget);
        }
        if (rc == 0 && budget != before) {
            rc = chan_put(txn, s, channel, &info); /* moves no cursor position of chans */
        }
        if (rc == 0) {
            uint8_t k[8];
            chan_key(k, channel);
            key.mv_size = sizeof(k);
            key.mv_data = k;
            mrc = mdb_cursor_get(chans, &key, &val, MDB_SET_KEY);
            mrc = mrc == 0 ? mdb_cursor_get(chans, &key, &val, MDB_NEXT) : mrc;
        }
    }
    if (chans != NULL) {
        mdb_cursor_close(chans);
    }
    if (rc == 0 && mrc != 0 && mrc != MDB_NOTFOUND) {
        rc = store_err(mrc);
    }
    if (rc == 0) {
        rc = store_err(mdb_txn_commit(txn));
    } else if (txn != NULL) {
        mdb_txn_abort(txn);
    }
    if (rc == 0) {
        *deleted = delete_max - budget;
        if (*deleted > 0) {
            s->full = false;
        }
    }
    return rc;
}

/* ---- Stream index ------------------------------------------------------------------------- */

static void stream_key(uint8_t out[STORE_EVENT_KEY_LEN], uint64_t group, uint64_t channel)
{
    be64_store(out, group);
    be64_store(out + 8, channel);
}

int store_stream_put(struct store *s, uint64_t group, uint64_t channel, const uint8_t *data,
                     size_t size)
{
    if (s->txn == NULL || size > STORE_STREAM_DESC_MAX) {
        return TRONE_EINVAL;
    }
    if (s->batch_error != 0) {
        return s->batch_error;
    }
    uint8_t k[STORE_EVENT_KEY_LEN];
    stream_key(k, group, channel);
    MDB_val key = {.mv_size = sizeof(k), .mv_data = k};
    MDB_val old;
    if (mdb_get(s->txn, s->streams, &key, &old) == 0) {
        const uint8_t *p = NULL;
        size_t n = 0;
        if (value_check(STORE_DOM_STREAM, &key, &old, &p, &n) == 0 && n == size &&
            memcmp(p, data, size) == 0) {
            return 0; /* already indexed: no write */
        }
        return TRONE_EEXIST; /* another stream holds this id: refused, the batch stays usable */
    }
    return batch_fail(s,
                      value_put(s->txn, s->streams, STORE_DOM_STREAM, &key, NULL, 0, data, size));
}

int store_stream_next(struct store *s, uint64_t group, uint64_t after, uint64_t *channel,
                      uint8_t *data, size_t data_max, size_t *size)
{
    MDB_txn *txn = NULL;
    bool own = false;
    int rc = read_txn(s, &txn, &own);
    if (rc != 0) {
        return rc;
    }
    MDB_cursor *cur = NULL;
    rc = store_err(mdb_cursor_open(txn, s->streams, &cur));
    uint8_t k[STORE_EVENT_KEY_LEN];
    stream_key(k, group, after + 1);
    MDB_val key = {.mv_size = sizeof(k), .mv_data = k};
    MDB_val val;
    int mrc = rc == 0 && after < UINT64_MAX ? mdb_cursor_get(cur, &key, &val, MDB_SET_RANGE)
                                            : MDB_NOTFOUND;
    if (rc == 0 && (mrc == MDB_NOTFOUND ||
                    (mrc == 0 && (key.mv_size != sizeof(k) || be64_load(key.mv_data) != group)))) {
        rc = TRONE_ENOENT;
    } else if (rc == 0 && mrc != 0) {
        rc = store_err(mrc);
    }
    if (rc == 0) {
        const uint8_t *p = NULL;
        size_t n = 0;
        rc = value_check(STORE_DOM_STREAM, &key, &val, &p, &n);
        if (rc == 0 && n > data_max) {
            rc = TRONE_ECORRUPT;
        }
        if (rc == 0) {
            *channel = be64_load((const uint8_t *)key.mv_data + 8);
            memcpy(data, p, n);
            *size = n;
        }
    }
    if (cur != NULL) {
        mdb_cursor_close(cur);
    }
    if (own) {
        mdb_txn_abort(txn);
    }
    return rc;
}

int store_stream_each(struct store *s, store_stream_cb cb, void *ctx)
{
    MDB_txn *txn = NULL;
    bool own = false;
    int rc = read_txn(s, &txn, &own);
    if (rc != 0) {
        return rc;
    }
    MDB_cursor *cur = NULL;
    rc = store_err(mdb_cursor_open(txn, s->streams, &cur));
    MDB_val key;
    MDB_val val;
    uint64_t bound = rc == 0 ? dbi_entries(txn, s->streams) : 0;
    int mrc = rc == 0 ? mdb_cursor_get(cur, &key, &val, MDB_FIRST) : MDB_NOTFOUND;
    for (uint64_t i = 0; i <= bound && rc == 0 && mrc == 0; i++) {
        const uint8_t *p = NULL;
        size_t n = 0;
        if (key.mv_size != STORE_EVENT_KEY_LEN) {
            rc = TRONE_ECORRUPT;
            break;
        }
        rc = value_check(STORE_DOM_STREAM, &key, &val, &p, &n);
        if (rc == 0) {
            const uint8_t *k = key.mv_data;
            rc = cb(ctx, be64_load(k), be64_load(k + 8), p, n);
        }
        if (rc == 0) {
            mrc = mdb_cursor_get(cur, &key, &val, MDB_NEXT);
        }
    }
    if (rc == 0 && mrc != MDB_NOTFOUND && mrc != 0) {
        rc = store_err(mrc);
    }
    if (cur != NULL) {
        mdb_cursor_close(cur);
    }
    if (own) {
        mdb_txn_abort(txn);
    }
    return rc;
}
