/* smr_view.c: view changes (PBFT section 4.4 with signatures). A replica whose pending
 * request waited too long moves to the next view and sends a VIEW_CHANGE with its stable
 * checkpoint proof and prepared certificates; f+1 VIEW_CHANGEs for higher views make it
 * join; the new leader builds the NEW_VIEW (smr_new_view.c). No I/O. */
#include <stdlib.h>
#include <string.h>

#include "core/assert.h"
#include "smr/smr_view_msg.h"

static void send_own_view_change(struct smr *s)
{
    struct buf *own = &s->vc_bytes[s->config.self];
    if (own->used == 0 || s->vc_view[s->config.self] != s->view) {
        return;
    }
    buf_put_bytes(smr__send_begin(s), own->data, own->used);
    smr__send_done(s, SMR_DEST_ALL, 0, NULL);
}

void smr__view_change_start(struct smr *s, uint64_t view)
{
    if (view <= s->view) {
        return;
    }
    s->view = view;
    s->view_changing = true;
    s->view_dirty = true;
    s->view_started_ms = s->now_ms;
    struct buf *own = &s->vc_bytes[s->config.self];
    buf_reset(own);
    smr_vc_encode_own(s, view, own);
    if (own->error != 0) {
        buf_reset(own);
        return;
    }
    s->vc_view[s->config.self] = view;
    smr__trace(s, SMR_TRACE_VIEW_CHANGE, 0, s->config.self, view, s->executed);
    send_own_view_change(s);
    smr__new_view_try(s);
}

/* PBFT's liveness rule: f+1 replicas asking for views above ours cannot all be faulty, so
 * join the smallest of those views without waiting for our own timer. */
static void view_change_join(struct smr *s)
{
    uint32_t count = 0;
    uint64_t smallest = UINT64_MAX;
    for (uint32_t r = 0; r < s->config.replica_count; r++) {
        if (s->vc_view[r] > s->view) {
            count++;
            smallest = s->vc_view[r] < smallest ? s->vc_view[r] : smallest;
        }
    }
    if (count >= s->config.fault_count + 1) {
        smr__view_change_start(s, smallest);
    }
}

void smr__on_view_change(struct smr *s, uint32_t from, const uint8_t *data, size_t size)
{
    struct smr_vc vc;
    int rc = smr_vc_decode(data, size, s->config.window, &vc);
    if (rc != 0) {
        smr__trace(s, SMR_TRACE_REJECTED, rc, from, s->view, 0);
        return;
    }
    if (vc.replica != from) {
        smr__trace(s, SMR_TRACE_REJECTED, TRONE_EPROTO, from, s->view, 0);
    } else if (vc.new_view > s->vc_view[from] && vc.new_view >= s->view) {
        rc = smr_vc_validate(s, &vc);
        if (rc != 0) {
            smr__trace(s, SMR_TRACE_REJECTED, rc, from, vc.new_view, 0);
        } else {
            buf_reset(&s->vc_bytes[from]);
            buf_put_bytes(&s->vc_bytes[from], data, size);
            s->vc_view[from] = s->vc_bytes[from].error == 0 ? vc.new_view : 0;
        }
    }
    smr_vc_free(&vc);
    view_change_join(s);
    smr__new_view_try(s);
}

static uint32_t view_change_support(const struct smr *s)
{
    uint32_t count = 0;
    for (uint32_t r = 0; r < s->config.replica_count; r++) {
        count += s->vc_view[r] >= s->view ? 1 : 0;
    }
    return count;
}

/* Timers: a request pending too long starts a view change; a view change that gathered a
 * quorum but no NEW_VIEW in time moves on to the next view with a doubled timeout; replicas
 * already asking for higher views count as support, since they gave up on this one too.
 * One that gathered no quorum keeps waiting and resending its VIEW_CHANGE rather than running
 * ahead alone, so a replica that timed out by itself does not leave the others behind. A
 * single Byzantine VIEW_CHANGE for a far view cannot pull a correct replica anywhere. */
void smr__view_tick(struct smr *s)
{
    if (!s->view_changing) {
        if (smr__pending_expired(s)) {
            smr__view_change_start(s, s->view + 1);
        }
        return;
    }
    if (s->now_ms < s->view_started_ms + s->view_timeout_ms) {
        return;
    }
    if (view_change_support(s) >= s->quorum) {
        if (s->view_timeout_ms < 64 * s->config.request_timeout_ms) {
            s->view_timeout_ms *= 2;
        }
        smr__view_change_start(s, s->view + 1);
    } else {
        s->view_started_ms = s->now_ms;
        send_own_view_change(s);
    }
}
