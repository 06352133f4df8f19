/* cmd_keygen.c: `trone keygen NAME [--out FILE]`: writes a new client identity (mode 0600)
 * and prints its public key. Never prints or logs the secret. */
#include <stdio.h>
#include <string.h>

#include "cli/cmd.h"

#define KEYGEN_PATH_MAX 4096

static void keygen_usage(FILE *out)
{
    fprintf(out,
            "usage: trone keygen NAME [--out FILE] [--json]\n"
            "\n"
            "Makes a new Ed25519 client identity named NAME (1-%u of A-Z a-z 0-9 . _ -),\n"
            "writes it to FILE (default ./NAME.key, mode 0600, never overwritten) and prints\n"
            "its public key. Register the key with `trone register` before using it.\n",
            TRONE_NAME_MAX);
}

static void keygen_json_string(const char *s)
{
    putchar('"');
    for (size_t i = 0; s[i] != '\0'; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') {
            printf("\\%c", c);
        } else if (c < 0x20) {
            printf("\\u%04x", c);
        } else {
            putchar(c);
        }
    }
    putchar('"');
}

static int keygen_parse(int argc, char **argv, const char **name, const char **out, bool *json)
{
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
            keygen_usage(stdout);
            return -1;
        } else if (strcmp(arg, "--json") == 0) {
            *json = true;
        } else if (strcmp(arg, "--out") == 0) {
            if (i + 1 >= argc || argv[i + 1][0] == '\0') {
                return cmd_error(CMD_USAGE, "keygen", "--out needs a file name");
            }
            *out = argv[++i];
        } else if (arg[0] == '-') {
            return cmd_error(CMD_USAGE, "keygen", "unknown option '%s' (see trone keygen --help)",
                             arg);
        } else if (*name == NULL) {
            *name = arg;
        } else {
            return cmd_error(CMD_USAGE, "keygen", "unexpected argument '%s'", arg);
        }
    }
    if (*name == NULL) {
        return cmd_error(CMD_USAGE, "keygen", "needs a NAME (see trone keygen --help)");
    }
    return CMD_OK;
}

int cmd_keygen(int argc, char **argv)
{
    const char *name = NULL;
    const char *out = NULL;
    bool json = false;
    int rc = keygen_parse(argc, argv, &name, &out, &json);
    if (rc != CMD_OK) {
        return rc < 0 ? CMD_OK : rc;
    }
    struct key_identity id;
    if (key_identity_generate(&id, name) != 0) {
        return cmd_error(CMD_USAGE, "keygen", "bad name '%s': use 1-%u of A-Z a-z 0-9 . _ -", name,
                         TRONE_NAME_MAX);
    }
    char path[KEYGEN_PATH_MAX];
    if (out == NULL) {
        snprintf(path, sizeof(path), "./%s.key", name);
        out = path;
    }
    rc = key_identity_save(&id, out);
    char public_hex[2 * TRONE_KEY_LEN + 1];
    key_hex_encode(public_hex, id.public_key, sizeof(id.public_key));
    key_identity_wipe(&id);
    if (rc == TRONE_EEXIST) {
        return cmd_error(CMD_FAIL, "keygen",
                         "%s already exists (keys are never overwritten; "
                         "remove it or pass --out FILE)",
                         out);
    }
    if (rc != 0) {
        return cmd_error(CMD_FAIL, "keygen", "cannot write %s: %s", out, trone_strerror(rc));
    }
    if (json) {
        printf("{\"name\":");
        keygen_json_string(name);
        printf(",\"file\":");
        keygen_json_string(out);
        printf(",\"public\":\"%s\"}\n", public_hex);
    } else {
        printf("wrote %s (identity '%s')\n%s\n", out, name, public_hex);
    }
    return CMD_OK;
}
