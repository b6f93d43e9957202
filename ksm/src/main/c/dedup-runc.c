/*
 * dedup-runc: a runc-compatible wrapper that makes a container's processes mergeable by KSM, then execs the
 * real runc with the same arguments.
 *
 * containerd runs it in place of runc (runc option BinaryName, or `ctr run --runc-binary`). For `create`, `run`
 * and `exec` it decides whether the container's memory may be merged, and if so calls
 * prctl(PR_SET_MEMORY_MERGE, 1): the flag survives fork and execve, so runc init and the container's processes
 * inherit it. Every other runc call is passed straight through.
 *
 * The decision: the OCI annotation org.dedup-snapshotter.ksm ("true"/"false") of the container, else the node
 * default from config.json's "ksm": {"containers": "off" | "opt-in" | "all"}; "off" overrides annotations.
 * It is written in C because it runs on every runc call: a JVM would add a second or so to each container start.
 * It never stops runc from running: anything it cannot read means "do not merge" (and a line on stderr when a
 * merge was asked for and could not be set up).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef PR_SET_MEMORY_MERGE
#define PR_SET_MEMORY_MERGE 67
#endif

#define ANNOTATION "org.dedup-snapshotter.ksm"
#define DEFAULT_CONFIG "/etc/dedup-snapshotter/config.json"
#define MAX_JSON (8 << 20)

/* ---- a small JSON reader: enough to walk objects and arrays and compare strings ---- */

static const char *ws(const char *p) {
    while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r') p++;
    return p;
}

/* Reads a JSON string at p (at its opening quote) into out (NUL-terminated, truncated to cap-1; non-ASCII
 * \u escapes become '?'). Returns the position after the closing quote, or NULL when malformed. */
static const char *str(const char *p, char *out, size_t cap) {
    size_t n = 0;
    if (*p != '"') return NULL;
    for (p++; *p && *p != '"'; p++) {
        char c = *p;
        if (c == '\\') {
            p++;
            switch (*p) {
                case 'n': c = '\n'; break;
                case 't': c = '\t'; break;
                case 'r': c = '\r'; break;
                case 'b': c = '\b'; break;
                case 'f': c = '\f'; break;
                case 'u': {
                    unsigned v = 0;
                    for (int i = 1; i <= 4; i++) {
                        char h = p[i];
                        if (!h) return NULL;
                        v = v * 16 + (unsigned) (h >= 'a' ? h - 'a' + 10 : h >= 'A' ? h - 'A' + 10 : h - '0');
                    }
                    p += 4;
                    c = v < 128 ? (char) v : '?';
                    break;
                }
                case 0: return NULL;
                default: c = *p; /* \" \\ \/ */
            }
        }
        if (out && n + 1 < cap) out[n++] = c;
    }
    if (*p != '"') return NULL;
    if (out) out[n] = 0;
    return p + 1;
}

/* Skips one JSON value at p; returns the position after it, or NULL when malformed. */
static const char *skip(const char *p, int depth) {
    p = ws(p);
    if (depth > 64) return NULL;
    if (*p == '"') return str(p, NULL, 0);
    if (*p == '{' || *p == '[') {
        char close = *p == '{' ? '}' : ']';
        p = ws(p + 1);
        if (*p == close) return p + 1;
        for (;;) {
            if (close == '}') {
                p = str(ws(p), NULL, 0);
                if (!p) return NULL;
                p = ws(p);
                if (*p++ != ':') return NULL;
            }
            p = skip(p, depth + 1);
            if (!p) return NULL;
            p = ws(p);
            if (*p == ',') { p++; continue; }
            if (*p == close) return p + 1;
            return NULL;
        }
    }
    if (!*p) return NULL;
    while (*p && !strchr(",}] \t\r\n", *p)) p++; /* number, true, false, null */
    return p;
}

/* In the object at p, the value of member key (its position), or NULL. */
static const char *member(const char *p, const char *key) {
    char name[256];
    if (!p || *(p = ws(p)) != '{') return NULL;
    p = ws(p + 1);
    if (*p == '}') return NULL;
    for (;;) {
        p = str(ws(p), name, sizeof name);
        if (!p) return NULL;
        p = ws(p);
        if (*p++ != ':') return NULL;
        p = ws(p);
        if (strcmp(name, key) == 0) return p;
        p = skip(p, 0);
        if (!p) return NULL;
        p = ws(p);
        if (*p++ != ',') return NULL;
    }
}

/* The string value at p into out; 0 on success. */
static int string_at(const char *p, char *out, size_t cap) {
    return p && *ws(p) == '"' && str(ws(p), out, cap) ? 0 : -1;
}

static char *slurp(const char *path) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return NULL;
    struct stat st;
    if (fstat(fd, &st) != 0 || st.st_size > MAX_JSON) { close(fd); return NULL; }
    char *buf = malloc((size_t) st.st_size + 1);
    size_t n = 0;
    while (buf && n < (size_t) st.st_size) {
        ssize_t r = read(fd, buf + n, (size_t) st.st_size - n);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        n += (size_t) r;
    }
    close(fd);
    if (buf) buf[n] = 0;
    return buf;
}

/* ---- the decision ---- */

enum choice { UNSET, YES, NO };

static enum choice parse_bool(const char *v) {
    if (strcmp(v, "true") == 0) return YES;
    if (strcmp(v, "false") == 0) return NO;
    return UNSET; /* anything else: as if absent */
}

/* The annotation in the bundle's OCI config.json (runc create/run). */
static enum choice bundle_annotation(const char *bundle) {
    char path[4096], v[16];
    snprintf(path, sizeof path, "%s/config.json", bundle);
    char *json = slurp(path);
    enum choice c = UNSET;
    if (json && string_at(member(member(json, "annotations"), ANNOTATION), v, sizeof v) == 0) c = parse_bool(v);
    free(json);
    return c;
}

/* The annotation of a created container (runc exec): runc keeps annotations as "key=value" labels in its
 * state.json. */
static enum choice state_annotation(const char *root, const char *id) {
    char path[4096], label[256];
    if (strchr(id, '/')) return UNSET;
    snprintf(path, sizeof path, "%s/%s/state.json", root, id);
    char *json = slurp(path);
    enum choice c = UNSET;
    const char *p = json ? member(member(json, "config"), "labels") : NULL;
    if (p && *(p = ws(p)) == '[') {
        p = ws(p + 1);
        while (p && *p == '"') {
            p = str(p, label, sizeof label);
            if (p && strncmp(label, ANNOTATION "=", sizeof ANNOTATION) == 0) c = parse_bool(label + sizeof ANNOTATION);
            if (p) p = ws(p);
            if (p && *p == ',') p = ws(p + 1);
            else break;
        }
    }
    free(json);
    return c;
}

struct node { char mode[16]; char runc[4096]; };

/* The node's settings: ksm.containers and ksm.runc from the daemon's config.json. */
static void node_config(struct node *n) {
    strcpy(n->mode, "opt-in");
    n->runc[0] = 0;
    const char *path = getenv("DEDUP_SNAPSHOTTER_CONFIG");
    char *json = slurp(path && *path ? path : DEFAULT_CONFIG);
    if (!json) return;
    const char *ksm = member(json, "ksm");
    char v[16] = "";
    if (string_at(member(ksm, "containers"), v, sizeof v) == 0)
        for (char *c = v; *c; c++) *c = (char) (*c >= 'A' && *c <= 'Z' ? *c + 32 : *c); /* the daemon accepts any case */
    if (strcmp(v, "off") == 0 || strcmp(v, "opt-in") == 0 || strcmp(v, "all") == 0) strcpy(n->mode, v);
    string_at(member(ksm, "runc"), n->runc, sizeof n->runc);
    free(json);
}

/* ---- runc's command line ---- */

/* runc's global options that take a value (the rest are booleans). */
static int global_takes_value(const char *a) {
    static const char *const with_value[] = {"--root", "-root", "--log", "-log", "--log-format", "-log-format",
                                             "--criu", "-criu", "--rootless", "-rootless", NULL};
    for (int i = 0; with_value[i]; i++)
        if (strcmp(a, with_value[i]) == 0) return 1;
    return 0;
}

/* The value of option name (also name=value) among argv[from..argc), or NULL. */
static const char *option(int argc, char **argv, int from, const char *name, const char *alt) {
    size_t len = strlen(name);
    for (int i = from; i < argc; i++) {
        if ((strcmp(argv[i], name) == 0 || (alt && strcmp(argv[i], alt) == 0)) && i + 1 < argc) return argv[i + 1];
        if (strncmp(argv[i], name, len) == 0 && argv[i][len] == '=') return argv[i] + len + 1;
    }
    return NULL;
}

static int executable(const char *path) {
    return path && *path && access(path, X_OK) == 0;
}

int main(int argc, char **argv) {
    int sub = 1;
    while (sub < argc && argv[sub][0] == '-') sub += global_takes_value(argv[sub]) && !strchr(argv[sub], '=') ? 2 : 1;
    const char *cmd = sub < argc ? argv[sub] : "";
    int creates = strcmp(cmd, "create") == 0 || strcmp(cmd, "run") == 0;
    int execs = strcmp(cmd, "exec") == 0;

    struct node node;
    node_config(&node);

    if (creates || execs) {
        enum choice c;
        if (creates) {
            const char *bundle = option(argc, argv, sub + 1, "--bundle", "-b");
            c = bundle_annotation(bundle ? bundle : ".");
        } else {
            const char *root = option(argc, argv, 1, "--root", "-root");
            /* containerd passes the process as a file (--process), so the container id is the last argument */
            c = option(argc, argv, sub + 1, "--process", "-p") ? state_annotation(root ? root : "/run/runc", argv[argc - 1]) : UNSET;
        }
        int merge = strcmp(node.mode, "off") != 0 && (c == YES || (c == UNSET && strcmp(node.mode, "all") == 0));
        if (merge && prctl(PR_SET_MEMORY_MERGE, 1, 0, 0, 0) != 0)
            fprintf(stderr, "dedup-runc: prctl(PR_SET_MEMORY_MERGE) failed (%s): the container runs without KSM; "
                            "KSM for whole processes needs Linux >= 6.4 with CONFIG_KSM\n", strerror(errno));
    }

    const char *real = getenv("DEDUP_RUNC");
    if (!executable(real)) real = executable(node.runc) ? node.runc : NULL;
    static const char *const candidates[] = {"/usr/sbin/runc", "/usr/bin/runc", "/usr/local/sbin/runc", "/usr/local/bin/runc", NULL};
    for (int i = 0; !real && candidates[i]; i++)
        if (executable(candidates[i])) real = candidates[i];
    if (!real) {
        fprintf(stderr, "dedup-runc: no runc found (tried $DEDUP_RUNC, ksm.runc in the config, /usr/sbin/runc, "
                        "/usr/bin/runc, /usr/local/sbin/runc, /usr/local/bin/runc): install runc\n");
        return 127;
    }
    argv[0] = (char *) real;
    execv(real, argv);
    fprintf(stderr, "dedup-runc: cannot run %s: %s\n", real, strerror(errno));
    return 126;
}
