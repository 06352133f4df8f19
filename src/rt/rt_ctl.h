/* rt_ctl.h: control-table operations over an rt_client, for the CLI: encode a brk_op, wait for
 * the agreed result, decode its header. Also the duration parser the CLI's --timeout uses. */
#ifndef TRONE_RT_CTL_H
#define TRONE_RT_CTL_H

#include <stddef.h>
#include <stdint.h>

#include "broker/brk_op.h"
#include "core/buf.h"
#include "rt/rt_client.h"
#include "trone/error.h"

/* Runs op through the replicas. Returns 0 once the replicas agreed on a result: res then holds
 * its status (0, or the TRONE_E* refusal with its message) and res->body points into bytes,
 * which the caller owns (it is reset first). Returns a TRONE_E* code with a one-line reason
 * in errmsg when the op could not be encoded or no agreed result arrived within timeout_ms. */
TRONE_MUST_CHECK int rt_ctl_call(struct rt_client *c, const struct brk_op *op, uint64_t timeout_ms,
                                 struct buf *bytes, struct brk_result *res, char *errmsg,
                                 size_t errmsg_size);

/* rt_ctl_key_lock takes an exclusive lock on the key file (flock) for the life of a client,
 * which serialises the control commands of one key on one host; rt_ctl_key_unlock releases
 * it. Correctness no longer needs it (the replicas execute a key's requests in any id order,
 * docs/PROTOCOL.md 4): it keeps commands of one key from racing each other's effects.
 * Returns a descriptor (>= 0) or TRONE_EIO. */
int rt_ctl_key_lock(const char *key_path);
void rt_ctl_key_unlock(int fd);

/* Parses a positive number of seconds ("20", "0.5", at most one day) into milliseconds.
 * Returns 0 or TRONE_EINVAL (*ms unchanged). */
TRONE_MUST_CHECK int rt_ctl_seconds_parse(const char *text, uint64_t *ms);

#endif
