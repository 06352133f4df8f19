/* cfg.c: reads (with inih) and writes the cluster file, and checks the quorum rule.
 * Everything in the file is untrusted input: each error names the file and line, nothing
 * asserts on it. Touches only the file it is given. */
#include "core/cfg.h"

#include <errno.h>
#include <ini.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/assert.h"
#include "core/errmsg.h"
#include "core/key.h"

#define CFG_LINES_MAX 10000
#define CFG_SECTION_MAX 64

struct cfg_parse {
    FILE *file;
    const char *path;
    int line;
    int error_line; /* line of the first error found by the handler or the reader */
    char *errmsg;
    size_t errmsg_size;
    struct cfg_cluster *c;
    char section[CFG_SECTION_MAX];
    int header_line;   /* the line of the last "[...]" header the reader saw */
    int section_line;  /* the header line of the current section */
    int section_valid; /* the current section is [cluster] or a [replica N] */
    int section_is_cluster;
    uint32_t replica_idx;
    int cluster_line; /* where [cluster] starts, 0 if absent */
    int have_fault_model;
    int have_fault_count;
    int have_admin;
    int replica_line[TRONE_REPLICAS_MAX]; /* where [replica i] starts, 0 if absent */
    int have_address[TRONE_REPLICAS_MAX];
    int have_key[TRONE_REPLICAS_MAX];
};

static void cfg_fail(struct cfg_parse *p, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Records the first error as "path:line: reason" (or "path: reason" when line is 0). */
static void cfg_fail(struct cfg_parse *p, int line, const char *fmt, ...)
{
    if (p->error_line != 0) {
        return;
    }
    p->error_line = line > 0 ? line : -1;
    char reason[256];
    va_list args;
    va_start(args, fmt);
    vsnprintf(reason, sizeof(reason), fmt, args);
    va_end(args);
    /* The reason may quote the file: keep it one printable line, whatever the file holds. */
    for (size_t i = 0; reason[i] != '\0'; i++) {
        unsigned char c = (unsigned char)reason[i];
        if (c < 0x20 || c >= 0x7f) {
            reason[i] = '?';
        }
    }
    if (line > 0) {
        errmsg_set(p->errmsg, p->errmsg_size, "%s:%d: %s", p->path, line, reason);
    } else {
        errmsg_set(p->errmsg, p->errmsg_size, "%s: %s", p->path, reason);
    }
}

/* An fgets for inih that counts lines (so errors name them) and rejects overlong lines. */
static char *cfg_parse_reader(char *str, int num, void *stream)
{
    struct cfg_parse *p = stream;
    if (p->line >= CFG_LINES_MAX) {
        cfg_fail(p, p->line + 1, "file too long (at most %d lines)", CFG_LINES_MAX);
        return NULL;
    }
    char *got = fgets(str, num, p->file);
    if (got == NULL) {
        return NULL;
    }
    p->line++;
    /* inih does not report section headers; note where they are so errors can name them. */
    size_t blank = strspn(str, " \t");
    if (str[blank] == '[') {
        p->header_line = p->line;
    }
    size_t length = strlen(str);
    if (length > 0 && str[length - 1] != '\n' && !feof(p->file)) {
        cfg_fail(p, p->line, "line too long (at most %d characters)", num - 3);
        int c = 0;
        for (long skipped = 0; skipped < (1L << 20) && (c = fgetc(p->file)) != EOF; skipped++) {
            if (c == '\n') {
                break;
            }
        }
        str[0] = '\0';
    }
    return got;
}

/* Strict unsigned decimal: digits only, no sign, no leading zero, value <= max. */
static int cfg_parse_uint(const char *text, uint32_t max, uint32_t *value)
{
    size_t length = strlen(text);
    if (length == 0 || length > 10 || (length > 1 && text[0] == '0')) {
        return TRONE_EINVAL;
    }
    uint64_t v = 0;
    for (size_t i = 0; i < length; i++) {
        if (text[i] < '0' || text[i] > '9') {
            return TRONE_EINVAL;
        }
        v = v * 10 + (uint64_t)(text[i] - '0');
    }
    if (v > max) {
        return TRONE_EINVAL;
    }
    *value = (uint32_t)v;
    return 0;
}

static int cfg_host_char(char c, int bracketed)
{
    if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')) {
        return 1;
    }
    if (bracketed) {
        return c == ':' || c == '.';
    }
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '.' || c == '-';
}

int cfg_address_parse(const char *text, char *host, size_t host_size, uint16_t *port)
{
    TRONE_ASSERT(host != NULL);
    TRONE_ASSERT(port != NULL);
    if (host_size > 0) {
        host[0] = '\0';
    }
    *port = 0;
    if (text == NULL || strnlen(text, CFG_HOST_MAX + 9) > CFG_HOST_MAX + 8) {
        return TRONE_EINVAL;
    }
    int bracketed = text[0] == '[';
    const char *start = text + (bracketed ? 1 : 0);
    const char *colon = strrchr(text, ':');
    const char *end = bracketed ? strchr(start, ']') : colon;
    if (colon == NULL || end == NULL || end <= start) {
        return TRONE_EINVAL;
    }
    if (bracketed ? end + 1 != colon : strchr(text, ':') != colon) {
        return TRONE_EINVAL; /* "[v6]:port", or one ':' for a name or IPv4 address */
    }
    size_t host_length = (size_t)(end - start);
    if (host_length > CFG_HOST_MAX || host_length + 1 > host_size) {
        return TRONE_EINVAL;
    }
    for (size_t i = 0; i < host_length; i++) {
        if (!cfg_host_char(start[i], bracketed)) {
            return TRONE_EINVAL;
        }
    }
    uint32_t value = 0;
    if (cfg_parse_uint(colon + 1, 65535u, &value) != 0 || value == 0) {
        return TRONE_EINVAL;
    }
    memcpy(host, start, host_length);
    host[host_length] = '\0';
    *port = (uint16_t)value;
    return 0;
}

int cfg_check_quorum(int bft, uint32_t n, uint32_t f, char *errmsg, size_t errmsg_size)
{
    if (n == 0) {
        errmsg_set(errmsg, errmsg_size, "a cluster needs at least one replica");
        return TRONE_ECONFIG;
    }
    if (n > TRONE_REPLICAS_MAX) {
        errmsg_set(errmsg, errmsg_size, "at most %u replicas are supported (got %u)",
                    TRONE_REPLICAS_MAX, n);
        return TRONE_ECONFIG;
    }
    uint64_t needed = bft ? 3u * (uint64_t)f + 1u : 2u * (uint64_t)f + 1u;
    if ((uint64_t)n < needed) {
        errmsg_set(errmsg, errmsg_size, "%s needs n >= %s: %u replica%s cannot tolerate f=%u",
                    bft ? "BFT" : "CFT", bft ? "3f+1" : "2f+1", n, n == 1 ? "" : "s", f);
        return TRONE_ECONFIG;
    }
    return 0;
}

/* Starts a section: [cluster] or [replica N], each at most once. */
static int cfg_section_begin(struct cfg_parse *p, const char *section)
{
    snprintf(p->section, sizeof(p->section), "%s", section);
    p->section_line = p->header_line;
    p->section_valid = 0;
    int line = p->header_line;
    if (strcmp(section, "cluster") == 0) {
        if (p->cluster_line != 0) {
            cfg_fail(p, line, "duplicate section [cluster] (first at line %d)", p->cluster_line);
            return 0;
        }
        p->cluster_line = line;
        p->section_is_cluster = 1;
        p->section_valid = 1;
        return 1;
    }
    uint32_t idx = 0;
    if (strncmp(section, "replica ", 8) != 0 ||
        cfg_parse_uint(section + 8, TRONE_REPLICAS_MAX - 1, &idx) != 0) {
        cfg_fail(p, line,
                 "unknown section [%.40s] (expected [cluster] or [replica N], "
                 "N < %u)",
                 section, TRONE_REPLICAS_MAX);
        return 0;
    }
    if (p->replica_line[idx] != 0) {
        cfg_fail(p, line, "duplicate section [replica %u] (first at line %d)", idx,
                 p->replica_line[idx]);
        return 0;
    }
    p->replica_line[idx] = line;
    p->replica_idx = idx;
    p->section_is_cluster = 0;
    p->section_valid = 1;
    return 1;
}

static int cfg_seen(struct cfg_parse *p, int *seen, const char *name)
{
    if (*seen) {
        cfg_fail(p, p->line, "duplicate key '%s' in [%s]", name, p->section);
        return 0;
    }
    *seen = 1;
    return 1;
}

/* A replica or admin public key: 64 hex digits naming a usable Ed25519 point. */
static int cfg_key_parse(struct cfg_parse *p, const char *name, const char *value,
                         uint8_t key[TRONE_KEY_LEN])
{
    uint8_t x_public[TRONE_KEY_LEN];
    if (key_hex_decode(key, TRONE_KEY_LEN, value) != 0) {
        cfg_fail(p, p->line, "'%s' must be %u hex digits (an Ed25519 public key)", name,
                 2 * TRONE_KEY_LEN);
        return 0;
    }
    if (key_x25519_public(key, x_public) != 0) {
        cfg_fail(p, p->line, "'%s' is not a valid Ed25519 public key", name);
        return 0;
    }
    return 1;
}

static int cfg_cluster_key(struct cfg_parse *p, const char *name, const char *value)
{
    struct cfg_cluster *c = p->c;
    if (strcmp(name, "fault_model") == 0) {
        if (!cfg_seen(p, &p->have_fault_model, name)) {
            return 0;
        }
        if (strcmp(value, "bft") != 0 && strcmp(value, "cft") != 0) {
            cfg_fail(p, p->line, "fault_model must be bft or cft, not '%.40s'", value);
            return 0;
        }
        c->bft = strcmp(value, "bft") == 0;
        return 1;
    }
    if (strcmp(name, "f") == 0) {
        if (!cfg_seen(p, &p->have_fault_count, name)) {
            return 0;
        }
        if (cfg_parse_uint(value, TRONE_REPLICAS_MAX, &c->fault_count) != 0) {
            cfg_fail(p, p->line, "f must be a number from 0 to %u, not '%.40s'", TRONE_REPLICAS_MAX,
                     value);
            return 0;
        }
        return 1;
    }
    if (strcmp(name, "admin") == 0) {
        return cfg_seen(p, &p->have_admin, name) && cfg_key_parse(p, name, value, c->admin_key);
    }
    cfg_fail(p, p->line, "unknown key '%.40s' in [cluster] (expected fault_model, f, admin)", name);
    return 0;
}

static int cfg_replica_key(struct cfg_parse *p, const char *name, const char *value)
{
    uint32_t idx = p->replica_idx;
    TRONE_ASSERT(idx < TRONE_REPLICAS_MAX);
    struct cfg_replica *r = &p->c->replicas[idx];
    if (strcmp(name, "address") == 0) {
        if (!cfg_seen(p, &p->have_address[idx], name)) {
            return 0;
        }
        if (cfg_address_parse(value, r->host, sizeof(r->host), &r->port) != 0) {
            cfg_fail(p, p->line, "bad address '%.60s' (expected host:port or [ipv6]:port)", value);
            return 0;
        }
        return 1;
    }
    if (strcmp(name, "key") == 0) {
        return cfg_seen(p, &p->have_key[idx], name) && cfg_key_parse(p, name, value, r->public_key);
    }
    cfg_fail(p, p->line, "unknown key '%.40s' in [replica %u] (expected address, key)", name, idx);
    return 0;
}

static int cfg_parse_handler(void *user, const char *section, const char *name, const char *value)
{
    struct cfg_parse *p = user;
    if (section[0] == '\0') {
        cfg_fail(p, p->line, "'%.40s' is outside any section", name);
        return 0;
    }
    /* A new header, even one repeating the previous section's name, starts a new section. */
    if (strncmp(section, p->section, sizeof(p->section)) != 0 || p->section[0] == '\0' ||
        p->header_line != p->section_line) {
        if (!cfg_section_begin(p, section)) {
            return 0;
        }
    }
    if (!p->section_valid) {
        return 0; /* already reported at the section header */
    }
    if (p->section_is_cluster) {
        return cfg_cluster_key(p, name, value);
    }
    return cfg_replica_key(p, name, value);
}

/* After parsing: [cluster] complete, replicas 0..n-1 each complete, no two alike, quorum. */
static int cfg_parse_finish(struct cfg_parse *p)
{
    struct cfg_cluster *c = p->c;
    if (p->cluster_line == 0) {
        cfg_fail(p, 0, "no [cluster] section");
        return 0;
    }
    const char *missing = !p->have_fault_model   ? "fault_model"
                          : !p->have_fault_count ? "f"
                          : !p->have_admin       ? "admin"
                                                 : NULL;
    if (missing != NULL) {
        cfg_fail(p, p->cluster_line, "[cluster] has no '%s'", missing);
        return 0;
    }
    uint32_t n = 0;
    for (uint32_t i = 0; i < TRONE_REPLICAS_MAX; i++) {
        if (p->replica_line[i] != 0) {
            n = i + 1;
        }
    }
    if (n == 0) {
        cfg_fail(p, 0, "no [replica N] sections");
        return 0;
    }
    for (uint32_t i = 0; i < n; i++) {
        if (p->replica_line[i] == 0) {
            cfg_fail(p, 0, "[replica %u] is missing (replicas are numbered 0 to %u)", i, n - 1);
            return 0;
        }
        if (!p->have_address[i] || !p->have_key[i]) {
            cfg_fail(p, p->replica_line[i], "[replica %u] has no '%s'", i,
                     p->have_address[i] ? "key" : "address");
            return 0;
        }
        for (uint32_t j = 0; j < i; j++) {
            const struct cfg_replica *a = &c->replicas[j];
            const struct cfg_replica *b = &c->replicas[i];
            if (a->port == b->port && strcmp(a->host, b->host) == 0) {
                cfg_fail(p, p->replica_line[i], "[replica %u] has the address of [replica %u]", i,
                         j);
                return 0;
            }
            if (memcmp(a->public_key, b->public_key, TRONE_KEY_LEN) == 0) {
                cfg_fail(p, p->replica_line[i], "[replica %u] has the key of [replica %u]", i, j);
                return 0;
            }
        }
    }
    c->replica_count = n;
    char reason[200];
    if (cfg_check_quorum(c->bft, n, c->fault_count, reason, sizeof(reason)) != 0) {
        cfg_fail(p, p->cluster_line, "%s", reason);
        return 0;
    }
    return 1;
}

int cfg_cluster_load(struct cfg_cluster *c, const char *path, char *errmsg, size_t errmsg_size)
{
    TRONE_ASSERT(c != NULL);
    TRONE_ASSERT(path != NULL);
    memset(c, 0, sizeof(*c));
    errmsg_set(errmsg, errmsg_size, "%s", "");
    FILE *file = fopen(path, "re");
    if (file == NULL) {
        errmsg_set(errmsg, errmsg_size, "%s: cannot open cluster file: %s", path, strerror(errno));
        return TRONE_EIO;
    }
    struct cfg_parse *p = calloc(1, sizeof(*p));
    if (p == NULL) {
        fclose(file);
        errmsg_set(errmsg, errmsg_size, "%s: out of memory", path);
        return TRONE_ENOMEM;
    }
    *p = (struct cfg_parse){
        .file = file, .path = path, .errmsg = errmsg, .errmsg_size = errmsg_size, .c = c};
    int parsed = ini_parse_stream(cfg_parse_reader, p, cfg_parse_handler, p);
    int rc = 0;
    if (ferror(file)) {
        errmsg_set(errmsg, errmsg_size, "%s: read error", path);
        rc = TRONE_EIO;
    } else if (parsed > 0 && (p->error_line <= 0 || parsed < p->error_line)) {
        /* inih found a line that is neither [section], name = value nor a comment. */
        p->error_line = 0;
        cfg_fail(p, parsed, "syntax error (expected [section] or name = value)");
        rc = TRONE_ECONFIG;
    } else if (parsed < 0 && p->error_line == 0) {
        errmsg_set(errmsg, errmsg_size, "%s: cannot parse the cluster file", path);
        rc = TRONE_EIO;
    } else if (p->error_line != 0 || !cfg_parse_finish(p)) {
        rc = TRONE_ECONFIG;
    }
    fclose(file);
    free(p);
    if (rc != 0) {
        memset(c, 0, sizeof(*c));
    }
    TRONE_ASSERT(rc != 0 || c->replica_count > 0);
    return rc;
}

static int cfg_format(const struct cfg_cluster *c, FILE *out)
{
    char hex[2 * TRONE_KEY_LEN + 1];
    key_hex_encode(hex, c->admin_key, TRONE_KEY_LEN);
    fprintf(out,
            "; TRONE cluster file, written by `trone init`. Every replica and client reads it.\n"
            "; BFT tolerates f Byzantine replicas with n >= 3f+1; CFT f crashes with n >= 2f+1.\n"
            "[cluster]\nfault_model = %s\nf = %u\nadmin = %s\n",
            c->bft ? "bft" : "cft", c->fault_count, hex);
    for (uint32_t i = 0; i < c->replica_count; i++) {
        const struct cfg_replica *r = &c->replicas[i];
        int v6 = strchr(r->host, ':') != NULL;
        key_hex_encode(hex, r->public_key, TRONE_KEY_LEN);
        fprintf(out, "\n[replica %u]\naddress = %s%s%s:%u\nkey = %s\n", i, v6 ? "[" : "", r->host,
                v6 ? "]" : "", (unsigned)r->port, hex);
    }
    return ferror(out) ? TRONE_EIO : 0;
}

int cfg_cluster_save(const struct cfg_cluster *c, const char *path)
{
    TRONE_ASSERT(c != NULL);
    TRONE_ASSERT(path != NULL);
    TRONE_ASSERT(c->replica_count <= TRONE_REPLICAS_MAX);
    /* Write a temporary file and rename it, so a reader never sees half a cluster file. */
    char temp[4096];
    int length = snprintf(temp, sizeof(temp), "%s.tmp", path);
    if (length < 0 || (size_t)length >= sizeof(temp)) {
        return TRONE_EIO;
    }
    FILE *out = fopen(temp, "we");
    if (out == NULL) {
        return TRONE_EIO;
    }
    int rc = cfg_format(c, out);
    if (fchmod(fileno(out), 0644) != 0 || fflush(out) != 0 || fsync(fileno(out)) != 0) {
        rc = TRONE_EIO;
    }
    if (fclose(out) != 0) {
        rc = TRONE_EIO;
    }
    if (rc == 0 && rename(temp, path) != 0) {
        rc = TRONE_EIO;
    }
    if (rc != 0) {
        unlink(temp);
    }
    return rc;
}
