/* brk_events_sync.c: anti-entropy of durable streams between replicas (issue 4,
 * docs/PROTOCOL.md 11.2). A replica that was down, or whose data directory was wiped, has
 * holes in its durable streams. Every round it asks each peer which streams of each durable
 * channel it holds (SYNC_ASK, answered by SYNC_LIST pages), and for every stream where the
 * peer holds positions it lacks it starts a *chain* with that peer: SYNC_GET of the first
 * missing range (at most get_max positions), answered by SYNC_EVENTS, after which it asks for
 * the next missing range, until the peer's last position. Trust: on a CFT channel a peer's
 * events are stored as they come; on a BFT channel an event is stored once f+1 distinct
 * peers sent the same record bytes for its (stream, position), or, on a PKS/PKE FIFO stream,
 * once its publisher's signature verifies for an authorized publisher. Stores go through the
 * runtime's functions (brk_events_durable) into the loop turn's batch, as live events do.
 * Only a channel's own group is synced: the pending streams of total-order channels are each
 * replica's staging of events it accepted before their ORDER released them (their agreed
 * copies are in the total stream, which is synced; a missing one is FETCHed by its ORDER).
 * No I/O, no clock of its own (now_us comes in), no randomness. */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/brk_events_internal.h"
#include "chan/chan_auth.h"
#include "chan/chan_durable.h"
#include "core/assert.h"

/* Fetch chains in progress, all peers and streams together. */
#define BRK_SYNC_CHAINS_MAX 1024u
/* Held positions a hole search looks at before giving up for this step. */
#define BRK_SYNC_HOLE_SCAN 65536u
/* Durable channels asked per tick (a round over more channels continues at the next tick). */
#define BRK_SYNC_ASKS_PER_TICK 32u
/* The next tick after a partial round. */
#define BRK_SYNC_CONTINUE_US 10000u

/* A stream being fetched from one peer up to its last position. */
struct brk_sync_chain {
    bool used;
    uint32_t peer;
    uint64_t stream;
    uint64_t upto;      /* the peer's last position when it listed the stream */
    uint64_t active_us; /* the last GET sent */
};

/* A BFT candidate: peers (bit per replica) that sent a record with this hash for (stream,
 * position). Only the hash is kept: the peer whose copy completes f+1 supplies the bytes. */
struct brk_sync_vote {
    uint64_t stream;
    uint64_t position;
    uint64_t voters;
    uint32_t next; /* bucket chain, or free list */
    bool used;
    uint8_t hash[TRONE_HASH_LEN];
};

struct brk_events_sync {
    uint64_t next_round_us;
    uint64_t round_us;   /* when the current round started */
    uint32_t ask_cursor; /* the channel index the round continues with; 0: round done */
    bool asking;         /* a round is partway through the channels */
    bool heard;          /* a LIST arrived since the current round started */
    uint64_t pace_us;    /* the current round's pace: period_us or idle_us */
    struct brk_sync_chain chains[BRK_SYNC_CHAINS_MAX];
    struct brk_sync_vote *votes;
    uint32_t *vote_buckets;
    uint32_t vote_mask;
    uint32_t vote_free;
    uint32_t vote_count;
    uint64_t answer_window_us[TRONE_REPLICAS_MAX];
    uint32_t answers[TRONE_REPLICAS_MAX];
};

void brk_events__sync_defaults(struct brk_events_sync_config *c)
{
    c->period_us = 1000000u;
    c->idle_us = 3000000u;
    c->chain_timeout_us = 3000000u;
    c->get_max = 2048u;
    c->answer_bytes_max = 1024u * 1024u;
    c->answers_max = 256u;
    c->votes_max = 65536u;
    c->faults = 0;
}

static bool brk_sync_enabled(const struct brk_events *e)
{
    return e->sync != NULL && e->config.durable.insert != NULL;
}

static void brk_sync_votes_clear(struct brk_events_sync *s, uint32_t votes_max)
{
    for (uint32_t i = 0; i <= s->vote_mask; i++) {
        s->vote_buckets[i] = BRK_EVENTS_NONE;
    }
    for (uint32_t i = 0; i < votes_max; i++) {
        s->votes[i].used = false;
        s->votes[i].next = i + 1 < votes_max ? i + 1 : BRK_EVENTS_NONE;
    }
    s->vote_free = 0;
    s->vote_count = 0;
}

int brk_events__sync_init(struct brk_events *e)
{
    const struct brk_events_sync_config *c = &e->config.sync;
    if (c->votes_max == 0 || c->votes_max > (1u << 24) || c->get_max == 0 ||
        c->get_max > CHAN_SYNC_GET_MAX || c->answer_bytes_max == 0 ||
        c->answer_bytes_max > TRONE_MESSAGE_MAX / 2u || c->period_us == 0 || c->idle_us == 0 ||
        c->answers_max == 0) {
        return TRONE_EINVAL;
    }
    e->sync = calloc(1, sizeof(*e->sync));
    if (e->sync == NULL) {
        return TRONE_ENOMEM;
    }
    uint32_t buckets = 1;
    while (buckets < c->votes_max) {
        buckets <<= 1;
    }
    e->sync->votes = calloc(c->votes_max, sizeof(*e->sync->votes));
    e->sync->vote_buckets = calloc(buckets, sizeof(*e->sync->vote_buckets));
    if (e->sync->votes == NULL || e->sync->vote_buckets == NULL) {
        return TRONE_ENOMEM; /* close frees */
    }
    e->sync->vote_mask = buckets - 1;
    brk_sync_votes_clear(e->sync, c->votes_max);
    return 0;
}

void brk_events__sync_close(struct brk_events *e)
{
    if (e->sync != NULL) {
        free(e->sync->votes);
        free(e->sync->vote_buckets);
        free(e->sync);
        e->sync = NULL;
    }
}

uint64_t brk_events__sync_deadline(const struct brk_events *e)
{
    if (!brk_sync_enabled(e)) {
        return UINT64_MAX;
    }
    return e->sync->next_round_us;
}

/* ---- Chains ------------------------------------------------------------------------------ */

static struct brk_sync_chain *brk_sync_chain_find(struct brk_events_sync *s, uint32_t peer,
                                                  uint64_t stream)
{
    for (uint32_t i = 0; i < BRK_SYNC_CHAINS_MAX; i++) {
        struct brk_sync_chain *c = &s->chains[i];
        if (c->used && c->peer == peer && c->stream == stream) {
            return c;
        }
    }
    return NULL;
}

static struct brk_sync_chain *brk_sync_chain_new(struct brk_events_sync *s, uint32_t peer,
                                                 uint64_t stream)
{
    for (uint32_t i = 0; i < BRK_SYNC_CHAINS_MAX; i++) {
        struct brk_sync_chain *c = &s->chains[i];
        if (!c->used) {
            memset(c, 0, sizeof(*c));
            c->used = true;
            c->peer = peer;
            c->stream = stream;
            return c;
        }
    }
    return NULL; /* the next round retries */
}

/* Asks chain c's peer for the first range at or after from that this replica lacks, up to
 * the chain's end; ends the chain when nothing is missing there. */
static void brk_sync_chain_next(struct brk_events *e, struct brk_sync_chain *c, const char *tag,
                                uint64_t from, uint64_t now_us)
{
    uint64_t hole = from;
    uint64_t hole_end = UINT64_MAX;
    int rc = e->config.durable.hole(e->config.durable.ctx, c->stream, from, &hole, &hole_end);
    if ((rc != 0 && rc != TRONE_EBUSY) || hole == 0 || hole > c->upto) {
        c->used = false; /* complete up to the peer's last (or the store failed) */
        return;
    }
    uint64_t count = c->upto - hole + 1u;
    count = hole_end > hole && hole_end - hole < count ? hole_end - hole : count;
    count = count > e->config.sync.get_max ? e->config.sync.get_max : count;
    struct chan_sync_msg m;
    memset(&m, 0, sizeof(m));
    m.type = CHAN_MSG_SYNC_GET;
    snprintf(m.tag, sizeof(m.tag), "%s", tag);
    m.stream = c->stream;
    m.from = hole;
    m.count = (uint32_t)count;
    size_t start = e->peer_out.used;
    chan_sync_put_header(&e->peer_out, &m);
    brk_events__peer_add(e, c->peer, start);
    c->active_us = now_us;
}

/* ---- Rounds ------------------------------------------------------------------------------ */

static void brk_sync_ask(struct brk_events *e, uint32_t peer, const char *tag, uint64_t after)
{
    struct chan_sync_msg m;
    memset(&m, 0, sizeof(m));
    m.type = CHAN_MSG_SYNC_ASK;
    snprintf(m.tag, sizeof(m.tag), "%s", tag);
    m.after = after;
    size_t start = e->peer_out.used;
    chan_sync_put_header(&e->peer_out, &m);
    brk_events__peer_add(e, peer, start);
}

void brk_events__sync_tick(struct brk_events *e, const struct brk_table *table, uint64_t now_us)
{
    if (!brk_sync_enabled(e) || now_us < e->sync->next_round_us) {
        return;
    }
    struct brk_events_sync *s = e->sync;
    for (uint32_t i = 0; i < BRK_SYNC_CHAINS_MAX; i++) {
        struct brk_sync_chain *c = &s->chains[i];
        if (c->used && now_us - c->active_us >= e->config.sync.chain_timeout_us) {
            c->used = false; /* the peer went quiet: the next round starts over */
        }
    }
    if (!s->asking) {
        /* The idle pace only after a round that heard from a peer (at start the peers are
         * not connected yet: their silence proves nothing). */
        s->pace_us = s->heard ? e->config.sync.idle_us : e->config.sync.period_us;
        s->heard = false;
        s->asking = true;
        s->ask_cursor = 0;
        s->round_us = now_us;
        e->stats.sync_rounds++;
    }
    uint32_t asked = 0;
    uint32_t count = brk_table_channel_count(table);
    while (s->ask_cursor < count && asked < BRK_SYNC_ASKS_PER_TICK) {
        const struct brk_channel *ch = brk_table_channel_at(table, s->ask_cursor);
        s->ask_cursor++;
        if (ch != NULL && ch->cls.durable) {
            brk_sync_ask(e, BRK_EVENTS_ALL_PEERS, ch->tag, 0);
            asked++;
        }
    }
    if (s->ask_cursor < count) {
        s->next_round_us = now_us + BRK_SYNC_CONTINUE_US;
        return;
    }
    s->asking = false;
    /* This pace unless a LIST of this round shows something missing (brk_sync_list). */
    s->next_round_us = s->round_us + s->pace_us;
}

/* ---- Serving peers ----------------------------------------------------------------------- */

static const struct brk_channel *brk_sync_channel(const struct brk_table *table, const char *tag)
{
    const struct brk_channel *ch = brk_table_find_channel(table, tag);
    return ch != NULL && ch->cls.durable ? ch : NULL;
}

/* SYNC_ASK: one LIST page of the streams this replica holds of the channel. */
static void brk_sync_answer_ask(struct brk_events *e, uint32_t peer, const struct chan_sync_msg *m)
{
    struct {
        uint64_t stream;
        struct brk_events_stream_info info;
        size_t desc_size;
        uint8_t desc[CHAN_DURABLE_DESC_MAX];
    } page[CHAN_SYNC_LIST_MAX];
    uint64_t group = chan_durable_group(m->tag);
    uint64_t after = m->after;
    uint32_t count = 0;
    bool end = false;
    /* Bounded: every turn moves after up or stops; at most 4 times a page of index reads. */
    for (uint32_t turn = 0; turn < 4u * CHAN_SYNC_LIST_MAX && count < CHAN_SYNC_LIST_MAX; turn++) {
        uint64_t stream = 0;
        int rc = e->config.durable.stream_next(e->config.durable.ctx, group, after, &stream,
                                               page[count].desc, sizeof(page[count].desc),
                                               &page[count].desc_size);
        if (rc != 0 || stream <= after) {
            end = true; /* ENOENT: the last page; an error ends the list here */
            break;
        }
        after = stream;
        page[count].stream = stream;
        if (e->config.durable.info(e->config.durable.ctx, stream, &page[count].info) == 0 &&
            page[count].info.count > 0) {
            count++;
        }
    }
    struct chan_sync_msg a;
    memset(&a, 0, sizeof(a));
    a.type = CHAN_MSG_SYNC_LIST;
    snprintf(a.tag, sizeof(a.tag), "%s", m->tag);
    a.after = m->after;
    a.flags = end ? CHAN_SYNC_LIST_END : 0;
    a.count = count;
    size_t start = e->peer_out.used;
    chan_sync_put_header(&e->peer_out, &a);
    for (uint32_t i = 0; i < count; i++) {
        struct chan_sync_entry en = {.stream = page[i].stream,
                                     .desc = page[i].desc,
                                     .desc_size = (uint8_t)page[i].desc_size,
                                     .first = page[i].info.first,
                                     .last = page[i].info.last,
                                     .count = page[i].info.count};
        chan_sync_put_entry(&e->peer_out, &en);
    }
    brk_events__peer_add(e, peer, start);
}

struct brk_sync_serve_ctx {
    struct brk_events *e;
    uint64_t end;  /* from + count */
    uint64_t next; /* the position after the last one looked at */
    size_t bytes;
    uint32_t count;
    bool stopped; /* stopped for the byte bound */
};

static int brk_sync_serve_one(void *ctx, uint64_t position, const uint8_t *record, size_t size)
{
    struct brk_sync_serve_ctx *x = ctx;
    if (position >= x->end) {
        return 1; /* past the range asked for */
    }
    if (x->count > 0 && x->bytes + size > x->e->config.sync.answer_bytes_max) {
        x->stopped = true;
        return 1;
    }
    if (size < CHAN_SYNC_RECORD_MIN || size > CHAN_SYNC_RECORD_MAX) {
        return 1; /* checksummed by the store; never send what a peer would refuse */
    }
    struct chan_sync_item it = {.position = position, .record = record, .size = (uint32_t)size};
    chan_sync_put_item(&x->e->peer_out, &it);
    x->bytes += size;
    x->count++;
    x->next = position + 1;
    return 0;
}

/* SYNC_GET: the events held in [from, from + count), within answer_bytes_max, at most
 * answers_max answers per peer and second (a Byzantine peer cannot make it send without
 * bound). */
static void brk_sync_answer_get(struct brk_events *e, uint64_t now_us, uint32_t peer,
                                const struct chan_sync_msg *m)
{
    struct brk_events_sync *s = e->sync;
    if (now_us < s->answer_window_us[peer] || now_us - s->answer_window_us[peer] >= 1000000u) {
        s->answer_window_us[peer] = now_us;
        s->answers[peer] = 0;
    }
    if (s->answers[peer] >= e->config.sync.answers_max) {
        return;
    }
    s->answers[peer]++;
    uint8_t desc[CHAN_DURABLE_DESC_MAX];
    size_t desc_size = 0;
    uint64_t stream = 0;
    /* The descriptor comes from this replica's index, never from the asker. */
    int rc = e->config.durable.stream_next(e->config.durable.ctx, chan_durable_group(m->tag),
                                           m->stream - 1u, &stream, desc, sizeof(desc), &desc_size);
    if (rc != 0 || stream != m->stream) {
        return;
    }
    struct chan_sync_msg a;
    memset(&a, 0, sizeof(a));
    a.type = CHAN_MSG_SYNC_EVENTS;
    snprintf(a.tag, sizeof(a.tag), "%s", m->tag);
    a.stream = m->stream;
    memcpy(a.desc, desc, desc_size);
    a.desc_size = (uint8_t)desc_size;
    a.from = m->from;
    a.next = m->from + m->count;
    size_t start = e->peer_out.used;
    chan_sync_put_header(&e->peer_out, &a);
    size_t next_at = e->peer_out.used - 12u; /* next | count */
    struct brk_sync_serve_ctx x = {.e = e, .end = m->from + m->count, .next = m->from};
    rc = e->config.durable.read(e->config.durable.ctx, m->stream, m->from, m->count,
                                brk_sync_serve_one, &x);
    if (rc < 0) {
        e->peer_out.used = start; /* the store failed: no answer, the asker's chain times out */
        return;
    }
    if (x.stopped && e->peer_out.error == 0) {
        /* Cut short by the byte bound: the asker goes on after the last one sent. */
        buf_store_u64(e->peer_out.data + next_at, x.next);
    }
    chan_sync_end(&e->peer_out, start, x.count);
    e->stats.sync_served += x.count;
    brk_events__peer_add(e, peer, start);
}

/* ---- Fetching ---------------------------------------------------------------------------- */

/* SYNC_LIST from peer: starts a chain for every listed stream where the peer holds
 * positions this replica lacks (and none runs with that peer yet), asks for the next page. */
static void brk_sync_list(struct brk_events *e, const struct brk_channel *ch, uint64_t now_us,
                          uint32_t peer, struct buf_reader *r, const struct chan_sync_msg *m)
{
    struct brk_events_sync *s = e->sync;
    s->heard = true;
    uint64_t last_stream = m->after;
    for (uint32_t i = 0; i < m->count; i++) {
        struct chan_sync_entry en;
        chan_sync_read_entry(r, &en);
        last_stream = en.stream;
        struct chan_durable_stream d;
        if (chan_durable_desc_decode(&d, en.desc, en.desc_size) != 0 ||
            chan_durable_stream_id(&d) != en.stream ||
            d.total != (ch->cls.order == BRK_ORDER_TOTAL) || d.pending || en.count == 0) {
            /* A descriptor that does not name its id, or a pending stream (per-replica
             * staging, never listed by a correct peer): ignored. */
            continue;
        }
        struct brk_sync_chain *c = brk_sync_chain_find(s, peer, en.stream);
        if (c != NULL) {
            continue; /* already fetching from that peer */
        }
        struct brk_events_stream_info info;
        memset(&info, 0, sizeof(info));
        int rc = e->config.durable.info(e->config.durable.ctx, en.stream, &info);
        if (rc != 0 && rc != TRONE_ENOENT) {
            continue;
        }
        /* Never below what this replica's retention deleted: a peer whose retention step
         * has not run yet still holds those, and fetching them back would keep deleted events
         * going round between the replicas. */
        uint64_t lower = en.first > info.trimmed ? en.first : info.trimmed + 1u;
        if (lower > en.last) {
            continue;
        }
        if (info.count > 0 && info.first <= lower && info.last >= en.last &&
            info.count == info.last - info.first + 1u) {
            continue; /* holds all of it */
        }
        c = brk_sync_chain_new(s, peer, en.stream);
        if (c == NULL) {
            continue;
        }
        c->upto = en.last;
        c->active_us = now_us;
        brk_sync_chain_next(e, c, ch->tag, lower, now_us);
        if (c->used) {
            /* Something is missing: the next round comes at the busy pace. */
            uint64_t busy = s->round_us + e->config.sync.period_us;
            s->next_round_us = busy < s->next_round_us ? busy : s->next_round_us;
        }
    }
    if (m->flags != CHAN_SYNC_LIST_END && m->count > 0) {
        brk_sync_ask(e, peer, ch->tag, last_stream);
    }
}

/* Checks that a record (publisher key | wire event) belongs at position of stream d and
 * decodes its event. */
static bool brk_sync_record_ok(const struct chan_durable_stream *d, uint64_t position,
                               const uint8_t *record, size_t size, struct chan_event *ev)
{
    struct buf_reader r;
    buf_reader_init(&r, record + TRONE_KEY_LEN, size - TRONE_KEY_LEN);
    chan_msg_read_event(&r, ev);
    if (r.error != 0 || buf_reader_finish(&r) != 0) {
        return false;
    }
    if (d->total) {
        return true; /* the position is the agreed one: votes decide */
    }
    return memcmp(record, d->publisher, TRONE_KEY_LEN) == 0 && ev->epoch == d->epoch &&
           ev->seq == position;
}

static uint32_t brk_sync_vote_bucket(const struct brk_events_sync *s, uint64_t stream,
                                     uint64_t position)
{
    uint64_t h = stream ^ (position * UINT64_C(0x9e3779b97f4a7c15));
    h ^= h >> 29;
    return (uint32_t)(h & s->vote_mask);
}

/* Adds peer's vote for (stream, position, hash); true once f+1 distinct peers sent it, then
 * forgets every candidate of that position. */
static bool brk_sync_vote(struct brk_events *e, uint64_t stream, uint64_t position,
                          const uint8_t hash[TRONE_HASH_LEN], uint32_t peer)
{
    struct brk_events_sync *s = e->sync;
    uint32_t bucket = brk_sync_vote_bucket(s, stream, position);
    struct brk_sync_vote *v = NULL;
    for (uint32_t i = s->vote_buckets[bucket]; i != BRK_EVENTS_NONE; i = s->votes[i].next) {
        struct brk_sync_vote *c = &s->votes[i];
        if (c->stream == stream && c->position == position &&
            memcmp(c->hash, hash, TRONE_HASH_LEN) == 0) {
            v = c;
            break;
        }
    }
    if (v == NULL) {
        if (s->vote_free == BRK_EVENTS_NONE) {
            /* Full (peers far apart, or a Byzantine one sending junk): start over; the chains
             * and the next rounds ask again. */
            e->stats.sync_votes_dropped += s->vote_count;
            brk_sync_votes_clear(s, e->config.sync.votes_max);
        }
        uint32_t i = s->vote_free;
        v = &s->votes[i];
        s->vote_free = v->next;
        memset(v, 0, sizeof(*v));
        v->used = true;
        v->stream = stream;
        v->position = position;
        memcpy(v->hash, hash, TRONE_HASH_LEN);
        v->next = s->vote_buckets[bucket];
        s->vote_buckets[bucket] = i;
        s->vote_count++;
    }
    v->voters |= UINT64_C(1) << peer;
    uint32_t votes = (uint32_t)__builtin_popcountll(v->voters);
    if (votes < e->config.sync.faults + 1u) {
        return false;
    }
    /* Decided: unlink every candidate of this position. */
    uint32_t *link = &s->vote_buckets[bucket];
    while (*link != BRK_EVENTS_NONE) {
        struct brk_sync_vote *c = &s->votes[*link];
        if (c->stream == stream && c->position == position) {
            uint32_t i = *link;
            *link = c->next;
            c->used = false;
            c->next = s->vote_free;
            s->vote_free = i;
            s->vote_count--;
        } else {
            link = &c->next;
        }
    }
    return true;
}

/* May this record be stored on the word of peer alone? CFT: yes. BFT: only a FIFO event of a
 * PKS/PKE channel whose signature verifies for a publisher the table authorizes. */
static bool brk_sync_trusted(const struct brk_table *table, const struct brk_channel *ch,
                             const struct chan_durable_stream *d, const uint8_t *record,
                             const struct chan_event *ev)
{
    if (ch->cls.fault != BRK_FAULT_BFT) {
        return true;
    }
    bool signed_method = ch->cls.method == BRK_METHOD_PKS || ch->cls.method == BRK_METHOD_PKE;
    return signed_method && !d->total && brk_table_channel_may_publish(table, ch, record) &&
           chan_auth_verify(ch->tag, record, ev) == 0;
}

/* SYNC_EVENTS from peer on chain c: stores what may be stored, then asks for the next range. */
static void brk_sync_events(struct brk_events *e, const struct brk_table *table,
                            const struct brk_channel *ch, uint64_t now_us, uint32_t peer,
                            struct buf_reader *r, const struct chan_sync_msg *m)
{
    struct chan_durable_stream d;
    struct brk_sync_chain *c = brk_sync_chain_find(e->sync, peer, m->stream);
    if (c == NULL || chan_durable_desc_decode(&d, m->desc, m->desc_size) != 0 ||
        chan_durable_stream_id(&d) != m->stream || d.pending ||
        d.total != (ch->cls.order == BRK_ORDER_TOTAL)) {
        return; /* not asked for (a late answer of an ended chain), or inconsistent */
    }
    struct brk_events_stream_info info;
    memset(&info, 0, sizeof(info));
    int rc = e->config.durable.info(e->config.durable.ctx, m->stream, &info);
    if (rc != 0 && rc != TRONE_ENOENT) {
        c->used = false;
        return;
    }
    uint64_t group = chan_durable_group(ch->tag);
    uint64_t now_ms = now_us / 1000u;
    for (uint32_t i = 0; i < m->count; i++) {
        struct chan_sync_item it;
        chan_sync_read_item(r, &it);
        struct chan_event ev;
        if (!brk_sync_record_ok(&d, it.position, it.record, it.size, &ev)) {
            e->stats.sync_refused++;
            continue;
        }
        if (ch->cls.retain_ms != 0 && ev.time_us / 1000u + ch->cls.retain_ms < now_ms) {
            e->stats.sync_refused++; /* retention would delete it: not fetched back */
            continue;
        }
        if (!brk_sync_trusted(table, ch, &d, it.record, &ev)) {
            uint8_t hash[TRONE_HASH_LEN];
            crypto_generichash(hash, sizeof(hash), it.record, it.size, NULL, 0);
            if (!brk_sync_vote(e, m->stream, it.position, hash, peer)) {
                continue; /* waits for f+1 peers */
            }
        }
        rc = e->config.durable.insert(e->config.durable.ctx, group, m->stream, m->desc,
                                      m->desc_size, it.position, ev.time_us, it.record, it.size,
                                      ch->cls.retain_ms, ch->cls.retain_bytes);
        if (rc == 0) {
            e->stats.sync_fetched++;
        } else if (rc != TRONE_EEXIST) {
            e->stats.sync_refused++;
            e->store_status = rc;
            c->used = false; /* full disk or store error: the next round tries again */
            return;
        }
    }
    brk_sync_chain_next(e, c, ch->tag, m->next, now_us);
}

int brk_events__sync_message(struct brk_events *e, const struct brk_table *table, uint64_t now_us,
                             uint32_t replica, const uint8_t *data, size_t size)
{
    struct buf_reader r;
    struct chan_sync_msg m;
    if (chan_sync_read(&r, data, size, &m) != 0 || replica >= TRONE_REPLICAS_MAX ||
        replica == e->config.self) {
        return TRONE_EBADMSG;
    }
    snprintf(e->out.tag, sizeof(e->out.tag), "%s", m.tag);
    const struct brk_channel *ch = brk_sync_channel(table, m.tag);
    if (!brk_sync_enabled(e) || ch == NULL) {
        return 0; /* no store, or not a durable channel here (yet): nothing to say */
    }
    switch (m.type) {
    case CHAN_MSG_SYNC_ASK:
        brk_sync_answer_ask(e, replica, &m);
        break;
    case CHAN_MSG_SYNC_GET:
        brk_sync_answer_get(e, now_us, replica, &m);
        break;
    case CHAN_MSG_SYNC_LIST:
        brk_sync_list(e, ch, now_us, replica, &r, &m);
        break;
    case CHAN_MSG_SYNC_EVENTS:
        brk_sync_events(e, table, ch, now_us, replica, &r, &m);
        break;
    default:
        return TRONE_EBADMSG;
    }
    return 0;
}
