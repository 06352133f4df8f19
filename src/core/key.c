/* key.c: Ed25519 identities (libsodium), their text key files (parsed with inih), and hex.
 * Reads and writes only the one key file it is given; never logs a secret. */
#include "core/key.h"

#include <errno.h>
#include <fcntl.h>
#include <ini.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/assert.h"
#include "core/errmsg.h"

/* Longest line of a key file ("secret = " and 128 hex digits) with room to spare. */
#define KEY_LINE_MAX 256
/* Key files are tiny; a bound on the lines read keeps a hostile file from costing much. */
#define KEY_FILE_LINES_MAX 1000

static int key_sodium_ready(void)
{
    /* sodium_init is idempotent and thread-safe: 0 first time, 1 after, -1 on failure. */
    return sodium_init() < 0 ? TRONE_EIO : 0;
}

/* A name is 1..TRONE_NAME_MAX of [A-Za-z0-9._-]: it appears in files and file names. */
static int key_name_check(const char *name)
{
    if (name == NULL || name[0] == '\0') {
        return TRONE_EINVAL;
    }
    size_t length = strnlen(name, TRONE_NAME_MAX + 1);
    if (length > TRONE_NAME_MAX) {
        return TRONE_EINVAL;
    }
    for (size_t i = 0; i < length; i++) {
        char c = name[i];
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                 c == '.' || c == '_' || c == '-';
        if (!ok) {
            return TRONE_EINVAL;
        }
    }
    return 0;
}

int key_identity_generate(struct key_identity *id, const char *name)
{
    TRONE_ASSERT(id != NULL);
    memset(id, 0, sizeof(*id));
    if (key_name_check(name) != 0) {
        return TRONE_EINVAL;
    }
    if (key_sodium_ready() != 0) {
        return TRONE_EIO;
    }
    memcpy(id->name, name, strlen(name));
    crypto_sign_ed25519_keypair(id->public_key, id->secret_key);
    return 0;
}

void key_identity_wipe(struct key_identity *id)
{
    TRONE_ASSERT(id != NULL);
    sodium_memzero(id, sizeof(*id));
}

static int key_write_all(int fd, const char *data, size_t size)
{
    size_t done = 0;
    /* Each write makes progress or fails, so the loop runs at most size times. */
    for (size_t round = 0; done < size && round <= size; round++) {
        ssize_t n = write(fd, data + done, size - done);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            return TRONE_EIO;
        }
        done += (size_t)n;
    }
    return done == size ? 0 : TRONE_EIO;
}

int key_identity_save(const struct key_identity *id, const char *path)
{
    TRONE_ASSERT(id != NULL);
    TRONE_ASSERT(path != NULL);
    if (key_name_check(id->name) != 0) {
        return TRONE_EINVAL;
    }
    char public_hex[2 * TRONE_KEY_LEN + 1];
    char secret_hex[2 * TRONE_SECRET_KEY_LEN + 1];
    char text[KEY_LINE_MAX * 4];
    key_hex_encode(public_hex, id->public_key, sizeof(id->public_key));
    key_hex_encode(secret_hex, id->secret_key, sizeof(id->secret_key));
    int length = snprintf(text, sizeof(text),
                          "; TRONE identity. Keep this file secret (mode 0600).\n"
                          "name = %s\npublic = %s\nsecret = %s\n",
                          id->name, public_hex, secret_hex);
    int rc = TRONE_EIO;
    int fd = -1;
    if (length < 0 || (size_t)length >= sizeof(text)) {
        goto out;
    }
    fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        rc = errno == EEXIST ? TRONE_EEXIST : TRONE_EIO;
        goto out;
    }
    /* The umask can only remove bits, but be explicit: the file holds a secret. */
    if (fchmod(fd, 0600) != 0 || key_write_all(fd, text, (size_t)length) != 0 || fsync(fd) != 0) {
        close(fd);
        fd = -1;
        unlink(path);
        goto out;
    }
    rc = close(fd) == 0 ? 0 : TRONE_EIO;
    fd = -1;
    if (rc != 0) {
        unlink(path);
    }
out:
    sodium_memzero(secret_hex, sizeof(secret_hex));
    sodium_memzero(text, sizeof(text));
    return rc;
}

/* Parser state for one key file. */
struct key_parse {
    FILE *file;
    const char *path;
    int line;
    int error_line; /* line of the first error the handler or reader found, 0 if none */
    char *errmsg;
    size_t errmsg_size;
    int have_name;
    int have_public;
    int have_secret;
    struct key_identity *id;
};

static void key_parse_fail(struct key_parse *p, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void key_parse_fail(struct key_parse *p, const char *fmt, ...)
{
    if (p->error_line != 0) {
        return; /* Keep the first reason. */
    }
    p->error_line = p->line;
    if (p->errmsg == NULL || p->errmsg_size == 0) {
        return;
    }
    char reason[200];
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
    snprintf(p->errmsg, p->errmsg_size, "%s:%d: %s", p->path, p->line, reason);
}

/* An fgets for inih that counts lines (so errors name them) and rejects overlong lines. */
static char *key_parse_reader(char *str, int num, void *stream)
{
    struct key_parse *p = stream;
    if (p->line >= KEY_FILE_LINES_MAX) {
        p->line++;
        key_parse_fail(p, "too many lines for a key file");
        return NULL;
    }
    char *got = fgets(str, num, p->file);
    if (got == NULL) {
        return NULL;
    }
    p->line++;
    size_t length = strlen(str);
    if (length > 0 && str[length - 1] != '\n' && !feof(p->file)) {
        key_parse_fail(p, "line too long");
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

static int key_parse_field(struct key_parse *p, int *seen, const char *name)
{
    if (*seen) {
        key_parse_fail(p, "duplicate key '%s'", name);
        return 0;
    }
    *seen = 1;
    return 1;
}

static int key_parse_handler(void *user, const char *section, const char *name, const char *value)
{
    struct key_parse *p = user;
    if (section[0] != '\0') {
        key_parse_fail(p, "unexpected section [%.40s] in a key file", section);
        return 0;
    }
    if (strcmp(name, "name") == 0) {
        if (!key_parse_field(p, &p->have_name, name)) {
            return 0;
        }
        if (key_name_check(value) != 0) {
            key_parse_fail(p, "bad name (1-%u of A-Z a-z 0-9 . _ -)", TRONE_NAME_MAX);
            return 0;
        }
        memcpy(p->id->name, value, strlen(value) + 1);
    } else if (strcmp(name, "public") == 0) {
        if (!key_parse_field(p, &p->have_public, name)) {
            return 0;
        }
        if (key_hex_decode(p->id->public_key, TRONE_KEY_LEN, value) != 0) {
            key_parse_fail(p, "public key is not %u hex digits", 2 * TRONE_KEY_LEN);
            return 0;
        }
    } else if (strcmp(name, "secret") == 0) {
        if (!key_parse_field(p, &p->have_secret, name)) {
            return 0;
        }
        if (key_hex_decode(p->id->secret_key, TRONE_SECRET_KEY_LEN, value) != 0) {
            key_parse_fail(p, "secret key is not %u hex digits", 2 * TRONE_SECRET_KEY_LEN);
            return 0;
        }
    } else {
        key_parse_fail(p, "unknown key '%.40s' (expected name, public, secret)", name);
        return 0;
    }
    return 1;
}

/* Checks what the parse found: every field present and the public key the secret's own. */
static int key_load_check(struct key_identity *id, const char *path, const struct key_parse *p,
                          char *errmsg, size_t errmsg_size)
{
    const char *missing = !p->have_name     ? "name"
                          : !p->have_public ? "public"
                          : !p->have_secret ? "secret"
                                            : NULL;
    if (missing != NULL) {
        errmsg_set(errmsg, errmsg_size, "%s: no '%s' in the key file", path, missing);
        return TRONE_ECONFIG;
    }
    /* libsodium's Ed25519 secret key is seed || public: rebuild it from the seed. */
    uint8_t public_key[TRONE_KEY_LEN];
    uint8_t secret_key[TRONE_SECRET_KEY_LEN];
    crypto_sign_ed25519_seed_keypair(public_key, secret_key, id->secret_key);
    int same = sodium_memcmp(secret_key, id->secret_key, sizeof(secret_key)) == 0 &&
               sodium_memcmp(public_key, id->public_key, sizeof(public_key)) == 0;
    sodium_memzero(secret_key, sizeof(secret_key));
    if (!same) {
        errmsg_set(errmsg, errmsg_size, "%s: the public key does not match the secret key",
                       path);
        return TRONE_ECONFIG;
    }
    return 0;
}

int key_identity_load(struct key_identity *id, const char *path, char *errmsg, size_t errmsg_size)
{
    TRONE_ASSERT(id != NULL);
    TRONE_ASSERT(path != NULL);
    memset(id, 0, sizeof(*id));
    if (errmsg != NULL && errmsg_size > 0) {
        errmsg[0] = '\0';
    }
    if (key_sodium_ready() != 0) {
        errmsg_set(errmsg, errmsg_size, "%s: libsodium failed to initialise", path);
        return TRONE_EIO;
    }
    FILE *file = fopen(path, "re");
    if (file == NULL) {
        errmsg_set(errmsg, errmsg_size, "%s: cannot open key file: %s", path, strerror(errno));
        return TRONE_EIO;
    }
    struct key_parse p = {
        .file = file, .path = path, .errmsg = errmsg, .errmsg_size = errmsg_size, .id = id};
    int parsed = ini_parse_stream(key_parse_reader, &p, key_parse_handler, &p);
    int read_failed = ferror(file);
    fclose(file);
    int rc = 0;
    if (read_failed) {
        errmsg_set(errmsg, errmsg_size, "%s: read error", path);
        rc = TRONE_EIO;
    } else if (parsed > 0 && (p.error_line == 0 || parsed < p.error_line)) {
        errmsg_set(errmsg, errmsg_size, "%s:%d: syntax error (expected 'name = value')", path,
                       parsed);
        rc = TRONE_ECONFIG;
    } else if (parsed != 0 || p.error_line != 0) {
        rc = parsed < 0 && p.error_line == 0 ? TRONE_EIO : TRONE_ECONFIG;
        if (rc == TRONE_EIO) {
            errmsg_set(errmsg, errmsg_size, "%s: cannot parse key file", path);
        }
    } else {
        rc = key_load_check(id, path, &p, errmsg, errmsg_size);
    }
    if (rc != 0) {
        key_identity_wipe(id);
    }
    return rc;
}

int key_x25519_public(const uint8_t ed_public[TRONE_KEY_LEN], uint8_t x_public[TRONE_KEY_LEN])
{
    TRONE_ASSERT(ed_public != NULL);
    TRONE_ASSERT(x_public != NULL);
    if (key_sodium_ready() != 0) {
        return TRONE_EIO;
    }
    /* Fails for a point not on the curve or of small order: such a key is invalid input. */
    if (crypto_sign_ed25519_pk_to_curve25519(x_public, ed_public) != 0) {
        memset(x_public, 0, TRONE_KEY_LEN);
        return TRONE_EINVAL;
    }
    return 0;
}

int key_x25519_secret(const uint8_t ed_secret[TRONE_SECRET_KEY_LEN],
                      uint8_t x_secret[TRONE_KEY_LEN])
{
    TRONE_ASSERT(ed_secret != NULL);
    TRONE_ASSERT(x_secret != NULL);
    if (key_sodium_ready() != 0) {
        return TRONE_EIO;
    }
    if (crypto_sign_ed25519_sk_to_curve25519(x_secret, ed_secret) != 0) {
        sodium_memzero(x_secret, TRONE_KEY_LEN);
        return TRONE_EINVAL;
    }
    return 0;
}

void key_hex_encode(char *out, const uint8_t *data, size_t size)
{
    TRONE_ASSERT(out != NULL);
    TRONE_ASSERT(data != NULL || size == 0);
    /* sodium_bin2hex is constant time and writes lower-case digits and the NUL. */
    sodium_bin2hex(out, 2 * size + 1, data, size);
}

int key_hex_decode(uint8_t *out, size_t size, const char *hex)
{
    TRONE_ASSERT(out != NULL);
    if (hex == NULL || strnlen(hex, 2 * size + 1) != 2 * size) {
        memset(out, 0, size);
        return TRONE_EINVAL;
    }
    size_t decoded = 0;
    const char *end = NULL;
    /* No ignored characters: anything but 2*size hex digits is an error. */
    int rc = sodium_hex2bin(out, size, hex, 2 * size, NULL, &decoded, &end);
    if (rc != 0 || decoded != size || end != hex + 2 * size) {
        sodium_memzero(out, size);
        return TRONE_EINVAL;
    }
    return 0;
}
