/* rt_ctl.c: one control-table operation through the replicas, for the CLI. */
#include "rt/rt_ctl.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

#include "core/assert.h"

#define RT_CTL_SECONDS_MAX (24.0 * 3600.0)
#define RT_CTL_STALE_RETRIES 8u

/* Reads change nothing, so one the replicas refused as stale (another process of this key,
 * e.g. a publisher's ORDERs, sent a newer request meanwhile) is simply asked again with a
 * newer id (rt_client_call renews it from the wall clock). */
static bool rt_ctl_read_only(enum brk_op_kind kind)
{
    return kind == BRK_OP_CHANNEL_LIST || kind == BRK_OP_CHANNEL_SHOW ||
           kind == BRK_OP_CHANNEL_KEYS;
}

int rt_ctl_call(struct rt_client *c, const struct brk_op *op, uint64_t timeout_ms,
                struct buf *bytes, struct brk_result *res, char *errmsg, size_t errmsg_size)
{
    TRONE_ASSERT(c != NULL && op != NULL);
    memset(res, 0, sizeof(*res));
    struct buf encoded;
    buf_init(&encoded, TRONE_OP_MAX);
    int rc = brk_op_encode(op, &encoded);
    if (rc != 0) {
        snprintf(errmsg, errmsg_size, "cannot encode the %s operation: %s",
                 brk_op_kind_name(op->kind), trone_strerror(rc));
        buf_close(&encoded);
        return rc;
    }
    for (uint32_t attempt = 0; attempt <= RT_CTL_STALE_RETRIES; attempt++) {
        if (attempt > 0) {
            /* 1 to 8 ms, growing: lets the other process's request through first. */
            struct timespec pause = {.tv_sec = 0, .tv_nsec = (long)attempt * 1000000L};
            nanosleep(&pause, NULL);
        }
        buf_reset(bytes);
        rc = rt_client_call(c, encoded.data, encoded.used, timeout_ms, bytes, errmsg, errmsg_size);
        if (rc != TRONE_ESTALE || !rt_ctl_read_only(op->kind)) {
            break;
        }
    }
    buf_close(&encoded);
    if (rc != 0) {
        return rc;
    }
    rc = brk_result_decode(bytes->data, bytes->used, res);
    if (rc != 0) {
        snprintf(errmsg, errmsg_size, "the replicas agreed on a malformed result (%s)",
                 trone_err_name(rc));
    }
    return rc;
}

int rt_ctl_key_lock(const char *key_path)
{
    int fd = open(key_path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return TRONE_EIO;
    }
    /* Blocks while another control command with this key runs; each is bounded by its own
     * --timeout. EINTR retries are bounded: a signal that should stop us also ends the process. */
    int rc = -1;
    for (int attempt = 0; attempt < 100 && rc != 0; attempt++) {
        rc = flock(fd, LOCK_EX);
        if (rc != 0 && errno != EINTR) {
            break;
        }
    }
    if (rc != 0) {
        close(fd);
        return TRONE_EIO;
    }
    return fd;
}

void rt_ctl_key_unlock(int fd)
{
    if (fd >= 0) {
        close(fd); /* closing the only descriptor releases the flock */
    }
}

int rt_ctl_seconds_parse(const char *text, uint64_t *ms)
{
    if (text == NULL || text[0] == '\0') {
        return TRONE_EINVAL;
    }
    char *end = NULL;
    double seconds = strtod(text, &end);
    if (end == text || *end != '\0' || !isfinite(seconds)) {
        return TRONE_EINVAL;
    }
    if (seconds <= 0.0 || seconds > RT_CTL_SECONDS_MAX) {
        return TRONE_EINVAL;
    }
    uint64_t value = (uint64_t)(seconds * 1000.0 + 0.5);
    *ms = value > 0 ? value : 1;
    return 0;
}
