/* cfg.h: the cluster file (written by `trone init`, parsed with inih). It names the fault
 * model, f, the admin key and, per replica, its address and Ed25519 public key.
 *
 *   [cluster]
 *   fault_model = bft            ; or cft
 *   f = 1
 *   admin = <64 hex: the admin's Ed25519 public key>
 *   [replica 0]
 *   address = 127.0.0.1:7400
 *   key = <64 hex>
 */
#ifndef TRONE_CFG_H
#define TRONE_CFG_H

#include <stddef.h>
#include <stdint.h>

#include "core/limits.h"
#include "trone/error.h"

#define CFG_HOST_MAX 255u

struct cfg_replica {
    char host[CFG_HOST_MAX + 1];
    uint16_t port;
    uint8_t public_key[TRONE_KEY_LEN];
};

struct cfg_cluster {
    int bft;                /* 1 BFT, 0 CFT */
    uint32_t fault_count;   /* f */
    uint32_t replica_count; /* n */
    uint8_t admin_key[TRONE_KEY_LEN];
    struct cfg_replica replicas[TRONE_REPLICAS_MAX];
};

/* Parses and validates a cluster file: every replica 0..n-1 present once, addresses and keys
 * well formed, n >= 3f+1 (BFT) or 2f+1 (CFT). On error writes a one-line reason naming the
 * file and line into errmsg and returns TRONE_ECONFIG (or TRONE_EIO if unreadable). */
TRONE_MUST_CHECK int cfg_cluster_load(struct cfg_cluster *c, const char *path, char *errmsg,
                                      size_t errmsg_size);
/* Writes the file (mode 0644); TRONE_EIO on failure. */
TRONE_MUST_CHECK int cfg_cluster_save(const struct cfg_cluster *c, const char *path);
/* "host:port" parsing; TRONE_EINVAL on error. */
TRONE_MUST_CHECK int cfg_address_parse(const char *text, char *host, size_t host_size,
                                       uint16_t *port);
/* The replica quorum rule: 0 when n replicas can tolerate f faults in that model. */
TRONE_MUST_CHECK int cfg_check_quorum(int bft, uint32_t n, uint32_t f, char *errmsg,
                                      size_t errmsg_size);

#endif
