/* rt_verify.c: the signature-check pool of a subscriber (rt_verify.h): a FIFO of held messages,
 * a ring of checks (jobs) in the same order, worker threads that take the oldest unclaimed
 * job, and a uv_async handle that wakes the loop thread to feed finished messages in order.
 * One mutex guards what threads share (counters, job states, message progress); the jobs'
 * inputs are written before they are published and never change while held. */
#include "rt/rt_verify.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "chan/chan_auth.h"
#include "client/cln_sub.h"
#include "core/assert.h"
#include "core/buf.h"

#define RT_VERIFY_BUCKETS (2u * RT_VERIFY_JOBS_MAX)
/* Jobs compared per lookup: a replica repeating one signature cannot make lookups costly. */
#define RT_VERIFY_CHAIN_MAX 8u
#define RT_VERIFY_NONE UINT64_MAX

enum rt_verify_state { RT_VERIFY_QUEUED = 0, RT_VERIFY_RUNNING = 1, RT_VERIFY_DONE = 2 };

/* One held message. */
struct rt_verify_msg {
    uint32_t replica;
    uint8_t *data; /* owned copy, then refs */
    size_t size;
    uint64_t *refs; /* per event: the job that checks it, or RT_VERIFY_NONE */
    uint32_t event_count;
    char tag[TRONE_TAG_MAX + 1];
    uint8_t publisher[TRONE_KEY_LEN];
    uint64_t job_first; /* its own jobs are [job_first, job_end) */
    uint64_t job_end;
    uint64_t ref_min; /* the oldest job it refers to (RT_VERIFY_NONE: none) */
    uint32_t undone;  /* own jobs not finished (mutex) */
};

/* One signature check. */
struct rt_verify_job {
    struct rt_verify_msg *msg; /* owner; e points into its data */
    struct chan_event e;
    uint64_t chain; /* the previous job of its bucket (loop thread only) */
    uint8_t state;  /* enum rt_verify_state (mutex) */
    uint8_t result; /* enum cln_sub_check once DONE (mutex) */
};

struct rt_verify {
    uv_async_t async;
    rt_verify_feed_cb feed;
    void *ctx;
    uint32_t thread_count;
    uint32_t started;
    pthread_t threads[RT_VERIFY_THREADS_MAX];
    pthread_mutex_t mutex;
    pthread_cond_t work; /* a job was published, or stop */
    pthread_cond_t done; /* a job finished */
    bool stop;
    /* Messages: [msg_tail, msg_head) are held, slot = number % RT_VERIFY_MSGS_MAX. */
    struct rt_verify_msg msgs[RT_VERIFY_MSGS_MAX];
    uint64_t msg_head, msg_tail;
    size_t bytes;
    /* Jobs: [job_tail, job_head) exist, [job_claim, job_head) are not claimed yet. */
    struct rt_verify_job jobs[RT_VERIFY_JOBS_MAX];
    uint64_t job_head, job_tail, job_claim;
    uint64_t buckets[RT_VERIFY_BUCKETS]; /* newest job per bucket (loop thread only) */
    uint8_t checks[CHAN_EVENTS_PER_MSG_MAX];
    struct rt_verify_counts counts; /* verified, helped: mutex; shared: loop thread */
};

static struct rt_verify_job *rt_verify_job(struct rt_verify *v, uint64_t number)
{
    return &v->jobs[number & (RT_VERIFY_JOBS_MAX - 1u)];
}

/* ---- Threads ------------------------------------------------------------------------------ */

/* Runs job number (claimed by the caller) without the mutex, then records its result. */
static void rt_verify_run(struct rt_verify *v, uint64_t number, bool helped)
{
    struct rt_verify_job *job = rt_verify_job(v, number);
    TRONE_ASSERT(job->state == RT_VERIFY_RUNNING);
    pthread_mutex_unlock(&v->mutex);
    int rc = chan_auth_verify(job->msg->tag, job->msg->publisher, &job->e);
    pthread_mutex_lock(&v->mutex);
    job->result = rc == 0 ? CLN_SUB_CHECK_VALID : CLN_SUB_CHECK_INVALID;
    job->state = RT_VERIFY_DONE;
    TRONE_ASSERT(job->msg->undone > 0);
    job->msg->undone--;
    v->counts.verified++;
    v->counts.helped += helped ? 1u : 0u;
    pthread_cond_broadcast(&v->done);
}

/* Claims the oldest unclaimed job (mutex held): its number, or RT_VERIFY_NONE. */
static uint64_t rt_verify_claim(struct rt_verify *v)
{
    if (v->job_claim == v->job_head) {
        return RT_VERIFY_NONE;
    }
    uint64_t number = v->job_claim++;
    rt_verify_job(v, number)->state = RT_VERIFY_RUNNING;
    return number;
}

static void *rt_verify_main(void *arg)
{
    struct rt_verify *v = arg;
    pthread_mutex_lock(&v->mutex);
    while (!v->stop) {
        uint64_t number = rt_verify_claim(v);
        if (number == RT_VERIFY_NONE) {
            pthread_cond_wait(&v->work, &v->mutex);
            continue;
        }
        rt_verify_run(v, number, false);
        if (rt_verify_job(v, number)->msg->undone == 0) {
            (void)uv_async_send(&v->async); /* thread-safe; coalesced by libuv */
        }
    }
    pthread_mutex_unlock(&v->mutex);
    return NULL;
}

/* Starts the threads on first use. Returns 0 or TRONE_ENOMEM (none could start). */
static int rt_verify_start(struct rt_verify *v)
{
    for (; v->started < v->thread_count; v->started++) {
        if (pthread_create(&v->threads[v->started], NULL, rt_verify_main, v) != 0) {
            break;
        }
    }
    return v->started > 0 ? 0 : TRONE_ENOMEM;
}

/* ---- Feeding in order (loop thread) ------------------------------------------------------- */

/* The oldest job some held message still refers to: jobs below it may be reused. */
static void rt_verify_tail_update(struct rt_verify *v)
{
    uint64_t tail = v->job_head;
    for (uint64_t m = v->msg_tail; m < v->msg_head; m++) {
        const struct rt_verify_msg *msg = &v->msgs[m % RT_VERIFY_MSGS_MAX];
        tail = msg->ref_min < tail ? msg->ref_min : tail;
    }
    TRONE_ASSERT(tail >= v->job_tail);
    v->job_tail = tail;
}

/* Feeds every finished message at the head of the FIFO. Called without the mutex. */
static void rt_verify_drain(struct rt_verify *v)
{
    pthread_mutex_lock(&v->mutex);
    while (v->msg_tail < v->msg_head) {
        struct rt_verify_msg *msg = &v->msgs[v->msg_tail % RT_VERIFY_MSGS_MAX];
        if (msg->undone > 0) {
            break;
        }
        uint32_t check_count = msg->refs != NULL ? msg->event_count : 0;
        for (uint32_t i = 0; i < check_count; i++) {
            uint64_t ref = msg->refs[i];
            const struct rt_verify_job *job = ref == RT_VERIFY_NONE ? NULL : rt_verify_job(v, ref);
            TRONE_ASSERT(job == NULL || job->state == RT_VERIFY_DONE);
            v->checks[i] = job == NULL ? (uint8_t)CLN_SUB_CHECK_NONE : job->result;
        }
        struct rt_verify_msg taken = *msg;
        memset(msg, 0, sizeof(*msg));
        v->msg_tail++;
        v->bytes -= taken.size;
        rt_verify_tail_update(v);
        pthread_mutex_unlock(&v->mutex);
        v->feed(v->ctx, taken.replica, taken.data, taken.size, v->checks, check_count);
        free(taken.data);
        pthread_mutex_lock(&v->mutex);
    }
    pthread_mutex_unlock(&v->mutex);
}

static void rt_verify_on_async(uv_async_t *async) { rt_verify_drain(async->data); }

/* Caller runs: finishes the oldest held message on this thread (its unclaimed jobs here, the
 * claimed ones by their threads), then feeds what is finished. */
static void rt_verify_help(struct rt_verify *v)
{
    pthread_mutex_lock(&v->mutex);
    TRONE_ASSERT(v->msg_tail < v->msg_head);
    struct rt_verify_msg *msg = &v->msgs[v->msg_tail % RT_VERIFY_MSGS_MAX];
    while (msg->undone > 0) {
        TRONE_ASSERT(v->job_claim >= msg->job_first); /* older jobs are all finished */
        uint64_t number = v->job_claim < msg->job_end ? rt_verify_claim(v) : RT_VERIFY_NONE;
        if (number == RT_VERIFY_NONE) {
            pthread_cond_wait(&v->done, &v->mutex);
        } else {
            rt_verify_run(v, number, true);
        }
    }
    pthread_mutex_unlock(&v->mutex);
    rt_verify_drain(v);
}

/* ---- Pushing (loop thread) ---------------------------------------------------------------- */

/* Does job hold exactly the check of e on tag by publisher? */
static bool rt_verify_same(const struct rt_verify_job *job, const char *tag,
                           const uint8_t publisher[TRONE_KEY_LEN], const struct chan_event *e)
{
    const struct chan_event *j = &job->e;
    return j->seq == e->seq && j->epoch == e->epoch && j->time_us == e->time_us &&
           j->auth_size == e->auth_size && j->payload_size == e->payload_size &&
           memcmp(job->msg->publisher, publisher, TRONE_KEY_LEN) == 0 &&
           strcmp(job->msg->tag, tag) == 0 &&
           (e->auth_size == 0 || memcmp(j->auth, e->auth, e->auth_size) == 0) &&
           (e->payload_size == 0 || memcmp(j->payload, e->payload, e->payload_size) == 0);
}

static uint32_t rt_verify_bucket(const struct chan_event *e)
{
    uint64_t key = e->seq * UINT64_C(0x9e3779b97f4a7c15);
    if (e->auth_size >= 8) {
        key ^= buf_load_u64(e->auth); /* the signature's first bytes: as good as random */
    }
    return (uint32_t)(key >> 40) & (RT_VERIFY_BUCKETS - 1u);
}

/* A held job checking the same copy as e, or RT_VERIFY_NONE. Only jobs of held messages are
 * looked at (those of fed messages point into freed bytes), at most RT_VERIFY_CHAIN_MAX. */
static uint64_t rt_verify_find(struct rt_verify *v, uint32_t bucket, const char *tag,
                               const uint8_t publisher[TRONE_KEY_LEN], const struct chan_event *e,
                               uint64_t live_from)
{
    uint64_t number = v->buckets[bucket];
    for (uint32_t k = 0; k < RT_VERIFY_CHAIN_MAX; k++) {
        if (number == RT_VERIFY_NONE || number < live_from || number < v->job_tail) {
            return RT_VERIFY_NONE;
        }
        const struct rt_verify_job *job = rt_verify_job(v, number);
        if (rt_verify_same(job, tag, publisher, e)) {
            return number;
        }
        number = job->chain;
    }
    return RT_VERIFY_NONE;
}

/* Is there room for a message of size bytes with jobs new checks? */
static bool rt_verify_room(const struct rt_verify *v, size_t size, uint32_t jobs)
{
    return v->msg_head - v->msg_tail < RT_VERIFY_MSGS_MAX &&
           v->bytes + size <= RT_VERIFY_BYTES_MAX &&
           v->job_head + jobs - v->job_tail <= RT_VERIFY_JOBS_MAX;
}

/* Fills msg's refs from wanted: a new job per distinct copy, or the job of an identical held
 * copy. The new jobs are not published yet. */
static void rt_verify_plan(struct rt_verify *v, struct rt_verify_msg *msg, const uint8_t *wanted)
{
    struct buf_reader r;
    struct chan_msg m;
    int rc = chan_msg_read_header(&r, msg->data, msg->size, &m);
    TRONE_ASSERT(rc == 0); /* checked by the caller (chan_msg_check) */
    TRONE_ASSERT(m.event_count == msg->event_count);
    memcpy(msg->tag, m.tag, sizeof(msg->tag));
    memcpy(msg->publisher, m.publisher, TRONE_KEY_LEN);
    uint64_t live_from = v->msg_tail < v->msg_head
                             ? v->msgs[v->msg_tail % RT_VERIFY_MSGS_MAX].job_first
                             : v->job_head;
    msg->job_first = v->job_head;
    msg->ref_min = RT_VERIFY_NONE;
    for (uint32_t i = 0; i < msg->event_count; i++) {
        struct chan_event e;
        chan_msg_read_event(&r, &e);
        TRONE_ASSERT(r.error == 0);
        msg->refs[i] = RT_VERIFY_NONE;
        if (wanted[i] == 0) {
            continue;
        }
        uint32_t bucket = rt_verify_bucket(&e);
        uint64_t number = rt_verify_find(v, bucket, msg->tag, msg->publisher, &e, live_from);
        if (number != RT_VERIFY_NONE) {
            v->counts.shared++;
        } else {
            number = v->job_head++;
            struct rt_verify_job *job = rt_verify_job(v, number);
            job->msg = msg;
            job->e = e;
            job->chain = v->buckets[bucket];
            job->state = RT_VERIFY_QUEUED;
            job->result = CLN_SUB_CHECK_NONE;
            v->buckets[bucket] = number;
            msg->undone++;
        }
        msg->refs[i] = number;
        msg->ref_min = number < msg->ref_min ? number : msg->ref_min;
    }
    msg->job_end = v->job_head;
}

int rt_verify_push(struct rt_verify *v, uint32_t replica, const uint8_t *msg, size_t size,
                   const uint8_t *wanted, uint32_t count)
{
    TRONE_ASSERT(wanted != NULL || count == 0);
    TRONE_ASSERT(count <= CHAN_EVENTS_PER_MSG_MAX);
    uint32_t jobs = 0;
    for (uint32_t i = 0; i < count; i++) {
        jobs += wanted[i] != 0 ? 1u : 0u;
    }
    int rc = jobs > 0 && v->started == 0 ? rt_verify_start(v) : 0;
    while (rc == 0 && !rt_verify_room(v, size, jobs) && v->msg_tail < v->msg_head) {
        rt_verify_help(v);
    }
    uint8_t *data = rc == 0 ? malloc(size + (size_t)count * sizeof(uint64_t) + 8u) : NULL;
    if (data == NULL || !rt_verify_room(v, size, jobs)) {
        while (v->msg_tail < v->msg_head) {
            rt_verify_help(v); /* everything earlier is fed: the caller goes on in order */
        }
        free(data);
        return rc != 0 ? rc : TRONE_ENOMEM;
    }
    memcpy(data, msg, size);
    struct rt_verify_msg *m = &v->msgs[v->msg_head % RT_VERIFY_MSGS_MAX];
    memset(m, 0, sizeof(*m));
    m->replica = replica;
    m->data = data;
    m->size = size;
    m->event_count = count;
    if (count > 0) {
        /* refs after the bytes, 8-aligned */
        m->refs = (uint64_t *)(void *)(data + ((size + 7u) & ~(size_t)7u));
    }
    pthread_mutex_lock(&v->mutex);
    if (m->refs != NULL) {
        rt_verify_plan(v, m, wanted);
    } else {
        m->job_first = m->job_end = v->job_head;
        m->ref_min = RT_VERIFY_NONE;
    }
    v->msg_head++;
    v->bytes += size;
    bool ready = m->undone == 0 && v->msg_tail + 1u == v->msg_head;
    if (m->job_end > m->job_first) {
        pthread_cond_broadcast(&v->work);
    }
    pthread_mutex_unlock(&v->mutex);
    if (ready) {
        rt_verify_drain(v); /* nothing to wait for: hand it over now */
    }
    return 0;
}

bool rt_verify_holding(const struct rt_verify *v)
{
    return v->msg_tail < v->msg_head; /* only the loop thread changes these */
}

void rt_verify_counts(struct rt_verify *v, struct rt_verify_counts *counts)
{
    pthread_mutex_lock(&v->mutex);
    *counts = v->counts;
    pthread_mutex_unlock(&v->mutex);
}

/* ---- Create and close --------------------------------------------------------------------- */

int rt_verify_create(uv_loop_t *loop, uint32_t threads, rt_verify_feed_cb feed, void *ctx,
                     struct rt_verify **out)
{
    *out = NULL;
    if (threads == 0 || threads > RT_VERIFY_THREADS_MAX || feed == NULL) {
        return TRONE_EINVAL;
    }
    struct rt_verify *v = calloc(1, sizeof(*v));
    if (v == NULL) {
        return TRONE_ENOMEM;
    }
    v->feed = feed;
    v->ctx = ctx;
    v->thread_count = threads;
    for (uint32_t i = 0; i < RT_VERIFY_BUCKETS; i++) {
        v->buckets[i] = RT_VERIFY_NONE;
    }
    if (pthread_mutex_init(&v->mutex, NULL) != 0 || pthread_cond_init(&v->work, NULL) != 0 ||
        pthread_cond_init(&v->done, NULL) != 0) {
        free(v); /* glibc's init cannot fail with default attributes */
        return TRONE_ENOMEM;
    }
    int rc = uv_async_init(loop, &v->async, rt_verify_on_async);
    if (rc != 0) {
        free(v);
        return TRONE_ENOMEM;
    }
    v->async.data = v;
    *out = v;
    return 0;
}

static void rt_verify_on_close(uv_handle_t *handle)
{
    struct rt_verify *v = handle->data;
    pthread_mutex_destroy(&v->mutex);
    pthread_cond_destroy(&v->work);
    pthread_cond_destroy(&v->done);
    free(v);
}

void rt_verify_close(struct rt_verify *v)
{
    if (v == NULL) {
        return;
    }
    pthread_mutex_lock(&v->mutex);
    v->stop = true;
    pthread_cond_broadcast(&v->work);
    pthread_mutex_unlock(&v->mutex);
    for (uint32_t i = 0; i < v->started; i++) {
        pthread_join(v->threads[i], NULL);
    }
    for (uint64_t m = v->msg_tail; m < v->msg_head; m++) {
        free(v->msgs[m % RT_VERIFY_MSGS_MAX].data);
    }
    v->msg_tail = v->msg_head;
    uv_close((uv_handle_t *)&v->async, rt_verify_on_close);
}
