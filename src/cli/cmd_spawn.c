/* cmd_spawn.c: child processes of this binary for bench and demo (cmd_spawn.h): fork/exec with
 * output to log files, stop by PID with bounded waits, cleanup on every path including SIGINT.
 * Between fork and exec the child calls only async-signal-safe functions. */
#include "cli/cmd_spawn.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cli/cmd.h"
#include "core/assert.h"
#include "core/key.h"

#define SPAWN_ARGV_MAX 32u
/* Environment entries passed on to a child (the rest are dropped). */
#define SPAWN_ENV_MAX 255u

extern char **environ;
#define SPAWN_POLL_MS 5u
#define SPAWN_TERM_WAIT_MS 3000u
#define SPAWN_KILL_WAIT_MS 5000u
#define SPAWN_STATUS_POLL_MS 1000u

uint64_t spawn_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t spawn_now_ms(void) { return spawn_now_ns() / 1000000u; }

static void spawn_sleep_ms(uint64_t ms)
{
    struct timespec ts = {.tv_sec = (time_t)(ms / 1000u), .tv_nsec = (long)(ms % 1000u) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* ---- The set ------------------------------------------------------------------------------ */

int spawn_set_init(struct spawn_set *s, const char *prefix, char *errmsg, size_t errmsg_size)
{
    memset(s, 0, sizeof(*s));
    int rc = pthread_mutex_init(&s->lock, NULL);
    TRONE_ASSERT(rc == 0);
    ssize_t length = readlink("/proc/self/exe", s->exe, sizeof(s->exe) - 1);
    if (length <= 0 || (size_t)length >= sizeof(s->exe) - 1) {
        snprintf(s->exe, sizeof(s->exe), "/proc/self/exe");
    } else {
        s->exe[length] = '\0';
    }
    const char *tmp = getenv("TMPDIR");
    if (tmp == NULL || tmp[0] == '\0' || strlen(tmp) > SPAWN_PATH_MAX / 2) {
        tmp = "/tmp";
    }
    snprintf(s->dir, sizeof(s->dir), "%s/%s-XXXXXX", tmp, prefix);
    if (mkdtemp(s->dir) == NULL) {
        snprintf(errmsg, errmsg_size, "cannot create a temporary directory in %s: %s", tmp,
                 strerror(errno));
        s->dir[0] = '\0';
        return TRONE_EIO;
    }
    return 0;
}

static int spawn_remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    if (remove(path) != 0) {
        fprintf(stderr, "trone: cannot remove %s: %s\n", path, strerror(errno));
    }
    return 0;
}

/* Sends sig to every registered child; returns how many there were. */
static uint32_t spawn_signal_all(struct spawn_set *s, int sig)
{
    uint32_t count = 0;
    pthread_mutex_lock(&s->lock);
    s->closing = true;
    for (uint32_t k = 0; k < SPAWN_CHILDREN_MAX; k++) {
        if (s->pids[k] > 0) {
            (void)kill(s->pids[k], sig);
            count++;
        }
    }
    pthread_mutex_unlock(&s->lock);
    return count;
}

/* Reaps what exited; returns how many children are still registered. */
static uint32_t spawn_reap_all(struct spawn_set *s)
{
    uint32_t count = 0;
    pthread_mutex_lock(&s->lock);
    for (uint32_t k = 0; k < SPAWN_CHILDREN_MAX; k++) {
        if (s->pids[k] <= 0) {
            continue;
        }
        int st = 0;
        pid_t r = waitpid(s->pids[k], &st, WNOHANG);
        if (r == s->pids[k] || (r < 0 && errno == ECHILD)) {
            s->pids[k] = 0;
        } else {
            count++;
        }
    }
    pthread_mutex_unlock(&s->lock);
    return count;
}

static void spawn_wait_all(struct spawn_set *s, uint64_t wait_ms)
{
    uint64_t deadline = spawn_now_ms() + wait_ms;
    while (spawn_reap_all(s) > 0 && spawn_now_ms() < deadline) {
        spawn_sleep_ms(SPAWN_POLL_MS);
    }
}

void spawn_set_close(struct spawn_set *s)
{
    if (spawn_signal_all(s, SIGTERM) > 0) {
        spawn_wait_all(s, SPAWN_TERM_WAIT_MS);
    }
    if (spawn_signal_all(s, SIGKILL) > 0) {
        spawn_wait_all(s, SPAWN_KILL_WAIT_MS);
    }
    pthread_mutex_lock(&s->lock);
    if (s->dir[0] != '\0' && !s->keep_dir) {
        (void)nftw(s->dir, spawn_remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    }
    s->dir[0] = '\0';
    pthread_mutex_unlock(&s->lock);
}

/* ---- Children ----------------------------------------------------------------------------- */

/* In the child, between fork and exec: only async-signal-safe calls. */
static void spawn_child_exec(const char *exe, char *const argv[], char *const envp[], int null_fd,
                             int log_fd, pid_t parent)
{
    sigset_t none;
    sigemptyset(&none);
    (void)sigprocmask(SIG_SETMASK, &none, NULL);
    struct sigaction dfl;
    memset(&dfl, 0, sizeof(dfl));
    dfl.sa_handler = SIG_DFL;
    (void)sigaction(SIGPIPE, &dfl, NULL);
    (void)sigaction(SIGINT, &dfl, NULL);
    (void)sigaction(SIGTERM, &dfl, NULL);
    (void)prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) {
        _exit(127); /* the parent died before prctl took effect */
    }
    if (dup2(null_fd, 0) < 0 || dup2(log_fd, 1) < 0 || dup2(log_fd, 2) < 0) {
        _exit(127);
    }
    execve(exe, argv, envp);
    static const char message[] = "trone: exec of a child failed\n";
    (void)write(2, message, sizeof(message) - 1);
    _exit(127);
}

int spawn_start(struct spawn_set *s, char *const argv[], const char *log_path, pid_t *pid,
                char *errmsg, size_t errmsg_size)
{
    return spawn_start_exe(s, NULL, NULL, argv, log_path, pid, errmsg, errmsg_size);
}

int spawn_start_program(struct spawn_set *s, const char *program, char *const argv[],
                        const char *log_path, pid_t *pid, char *errmsg, size_t errmsg_size)
{
    return spawn_start_exe(s, program, NULL, argv, log_path, pid, errmsg, errmsg_size);
}

int spawn_start_exe(struct spawn_set *s, const char *exe, const char *env, char *const argv[],
                    const char *log_path, pid_t *pid, char *errmsg, size_t errmsg_size)
{
    exe = exe != NULL ? exe : s->exe;
    /* The environment is built before fork: the child may only make async-signal-safe calls. */
    char *envp[SPAWN_ENV_MAX + 2];
    uint32_t env_count = 0;
    for (char **e = environ; *e != NULL && env_count < SPAWN_ENV_MAX; e++) {
        envp[env_count++] = *e;
    }
    if (env != NULL) {
        envp[env_count++] = (char *)env;
    }
    envp[env_count] = NULL;
    char *full[SPAWN_ARGV_MAX + 2];
    full[0] = (char *)exe;
    uint32_t count = 0;
    while (count < SPAWN_ARGV_MAX && argv[count] != NULL) {
        full[count + 1] = argv[count];
        count++;
    }
    TRONE_ASSERT(argv[count] == NULL);
    full[count + 1] = NULL;
    int log_fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    int null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (log_fd < 0 || null_fd < 0) {
        snprintf(errmsg, errmsg_size, "cannot open %s: %s", log_fd < 0 ? log_path : "/dev/null",
                 strerror(errno));
        if (log_fd >= 0) {
            close(log_fd);
        }
        if (null_fd >= 0) {
            close(null_fd);
        }
        return TRONE_EIO;
    }
    int rc = 0;
    pthread_mutex_lock(&s->lock);
    uint32_t slot = 0;
    while (slot < SPAWN_CHILDREN_MAX && s->pids[slot] != 0) {
        slot++;
    }
    if (s->closing || slot == SPAWN_CHILDREN_MAX) {
        rc = s->closing ? TRONE_ECLOSED : TRONE_EFULL;
        snprintf(errmsg, errmsg_size, "%s", s->closing ? "stopping" : "too many children");
    } else {
        pid_t parent = getpid();
        pid_t child = fork();
        if (child == 0) {
            spawn_child_exec(exe, full, envp, null_fd, log_fd, parent);
        }
        if (child < 0) {
            rc = TRONE_EIO;
            snprintf(errmsg, errmsg_size, "fork failed: %s", strerror(errno));
        } else {
            s->pids[slot] = child;
            *pid = child;
        }
    }
    pthread_mutex_unlock(&s->lock);
    close(log_fd);
    close(null_fd);
    return rc;
}

bool spawn_exited(struct spawn_set *s, pid_t pid, int *wstatus)
{
    bool exited = true;
    int st = 0;
    pthread_mutex_lock(&s->lock);
    for (uint32_t k = 0; k < SPAWN_CHILDREN_MAX; k++) {
        if (s->pids[k] != pid || pid <= 0) {
            continue;
        }
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == 0) {
            exited = false;
        } else {
            s->pids[k] = 0;
            st = r == pid ? st : 0;
        }
        break;
    }
    pthread_mutex_unlock(&s->lock);
    if (exited && wstatus != NULL) {
        *wstatus = st;
    }
    return exited;
}

/* Signals pid only while it is registered (not yet reaped), so a reused pid is never hit. */
static void spawn_signal(struct spawn_set *s, pid_t pid, int sig)
{
    pthread_mutex_lock(&s->lock);
    for (uint32_t k = 0; k < SPAWN_CHILDREN_MAX && pid > 0; k++) {
        if (s->pids[k] == pid) {
            (void)kill(pid, sig);
            break;
        }
    }
    pthread_mutex_unlock(&s->lock);
}

static bool spawn_wait(struct spawn_set *s, pid_t pid, uint64_t wait_ms, int *wstatus)
{
    uint64_t deadline = spawn_now_ms() + wait_ms;
    for (;;) {
        if (spawn_exited(s, pid, wstatus)) {
            return true;
        }
        if (spawn_now_ms() >= deadline) {
            return false;
        }
        spawn_sleep_ms(SPAWN_POLL_MS);
    }
}

int spawn_stop(struct spawn_set *s, pid_t pid, int sig, uint64_t wait_ms, int *wstatus)
{
    int st = 0;
    spawn_signal(s, pid, sig);
    if (spawn_wait(s, pid, wait_ms, &st)) {
        if (wstatus != NULL) {
            *wstatus = st;
        }
        return 0;
    }
    spawn_signal(s, pid, SIGKILL);
    (void)spawn_wait(s, pid, SPAWN_KILL_WAIT_MS, &st);
    if (wstatus != NULL) {
        *wstatus = st;
    }
    return TRONE_ETIMEDOUT;
}

void spawn_describe_status(int wstatus, char *out, size_t out_size)
{
    if (WIFEXITED(wstatus)) {
        snprintf(out, out_size, "exited with status %d", WEXITSTATUS(wstatus));
    } else if (WIFSIGNALED(wstatus)) {
        snprintf(out, out_size, "killed by signal %d (%s)", WTERMSIG(wstatus),
                 strsignal(WTERMSIG(wstatus)));
    } else {
        snprintf(out, out_size, "ended with wait status %d", wstatus);
    }
}

int spawn_run(struct spawn_set *s, char *const argv[], const char *log_path, uint64_t timeout_ms,
              char *errmsg, size_t errmsg_size)
{
    pid_t pid = 0;
    int rc = spawn_start(s, argv, log_path, &pid, errmsg, errmsg_size);
    if (rc != 0) {
        return rc;
    }
    int st = 0;
    if (!spawn_wait(s, pid, timeout_ms, &st)) {
        (void)spawn_stop(s, pid, SIGKILL, 0, NULL);
        snprintf(errmsg, errmsg_size, "`trone %s` did not finish within %llu ms (see %s)", argv[0],
                 (unsigned long long)timeout_ms, log_path);
        return TRONE_ETIMEDOUT;
    }
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        char how[96];
        spawn_describe_status(st, how, sizeof(how));
        snprintf(errmsg, errmsg_size, "`trone %s` %s (see %s)", argv[0], how, log_path);
        return TRONE_EIO;
    }
    return 0;
}

/* ---- The guard ---------------------------------------------------------------------------- */

struct spawn_guard {
    int (*body)(void *ctx);
    void *ctx;
    int result;
    atomic_int done;
};

static void *spawn_guard_main(void *arg)
{
    struct spawn_guard *g = arg;
    g->result = g->body(g->ctx);
    atomic_store(&g->done, 1);
    return NULL;
}

int spawn_guard_run(struct spawn_set *s, const char *cmd, int (*body)(void *ctx), void *ctx)
{
    sigset_t stops;
    sigset_t old;
    sigemptyset(&stops);
    sigaddset(&stops, SIGINT);
    sigaddset(&stops, SIGTERM);
    sigaddset(&stops, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &stops, &old);
    struct spawn_guard g = {.body = body, .ctx = ctx, .result = CMD_FAIL};
    atomic_init(&g.done, 0);
    pthread_t thread;
    if (pthread_create(&thread, NULL, spawn_guard_main, &g) != 0) {
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        spawn_set_close(s);
        return cmd_error(CMD_FAIL, cmd, "cannot start a thread");
    }
    /* The body bounds its own run time; this loop only waits for it or for a signal. */
    while (atomic_load(&g.done) == 0) {
        struct timespec poll = {.tv_sec = 0, .tv_nsec = 50 * 1000000L};
        int sig = sigtimedwait(&stops, NULL, &poll);
        if (sig > 0) {
            cmd_error(CMD_FAIL, cmd, "interrupted by %s: stopping the replicas and cleaning up",
                      strsignal(sig));
            fflush(stdout);
            spawn_set_close(s);
            fflush(stderr);
            _exit(CMD_FAIL);
        }
    }
    pthread_join(thread, NULL);
    spawn_set_close(s);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return g.result;
}

/* ---- A local cluster ---------------------------------------------------------------------- */

static int spawn_path(char *out, size_t out_size, const char *fmt, const char *a, const char *b)
{
    int length = snprintf(out, out_size, fmt, a, b);
    return length < 0 || (size_t)length >= out_size ? TRONE_EINVAL : 0;
}

int spawn_cluster_init(struct spawn_cluster *c, struct spawn_set *s, const char *name,
                       uint32_t replica_count, bool bft, char *errmsg, size_t errmsg_size)
{
    TRONE_ASSERT(replica_count > 0 && replica_count <= TRONE_REPLICAS_MAX);
    memset(c, 0, sizeof(*c));
    c->set = s;
    c->replica_count = replica_count;
    char log_path[SPAWN_PATH_MAX];
    int rc = spawn_path(c->dir, sizeof(c->dir), "%s/%s", s->dir, name);
    rc = rc != 0 ? rc
                 : spawn_path(c->cluster_path, sizeof(c->cluster_path), "%s/%s", c->dir,
                              "cluster.conf");
    rc = rc != 0 ? rc
                 : spawn_path(c->admin_key_path, sizeof(c->admin_key_path), "%s/%s", c->dir,
                              "keys/admin.key");
    rc = rc != 0 ? rc : spawn_path(log_path, sizeof(log_path), "%s/%s.init.log", s->dir, name);
    if (rc != 0) {
        snprintf(errmsg, errmsg_size, "temporary directory path too long");
        return rc;
    }
    char count[16];
    snprintf(count, sizeof(count), "%u", replica_count);
    char *argv[] = {"init", c->dir, "--replicas", count, "--fault-model", bft ? "bft" : "cft",
                    NULL};
    rc = spawn_run(s, argv, log_path, 20000u, errmsg, errmsg_size);
    if (rc != 0) {
        return rc;
    }
    char reason[512];
    rc = cfg_cluster_load(&c->config, c->cluster_path, reason, sizeof(reason));
    if (rc != 0) {
        snprintf(errmsg, errmsg_size, "%s", reason);
    }
    return rc;
}

void spawn_replica_log(const struct spawn_cluster *c, uint32_t id, char *out, size_t out_size)
{
    snprintf(out, out_size, "%.*s/replica%u.log", (int)(SPAWN_PATH_MAX - 32), c->dir, id);
}

int spawn_replica_start(struct spawn_cluster *c, uint32_t id, char *errmsg, size_t errmsg_size)
{
    return spawn_replica_start_exe(c, id, NULL, NULL, errmsg, errmsg_size);
}

int spawn_replica_start_exe(struct spawn_cluster *c, uint32_t id, const char *exe,
                            const char *env, char *errmsg, size_t errmsg_size)
{
    TRONE_ASSERT(id < c->replica_count);
    TRONE_ASSERT(c->pids[id] == 0);
    char id_text[16];
    char batch_text[16];
    char data[SPAWN_PATH_MAX + 16];
    char log_path[SPAWN_PATH_MAX];
    snprintf(id_text, sizeof(id_text), "%u", id);
    snprintf(batch_text, sizeof(batch_text), "%u", c->batch_max);
    snprintf(data, sizeof(data), "%.*s/data%u", (int)(SPAWN_PATH_MAX - 32), c->dir, id);
    spawn_replica_log(c, id, log_path, sizeof(log_path));
    char *argv[] = {"replica", "--id", id_text, "--cluster", c->cluster_path,
                    "--data",  data,   NULL,    NULL,        NULL};
    if (c->batch_max > 0) {
        argv[7] = "--batch-max";
        argv[8] = batch_text;
    }
    return spawn_start_exe(c->set, exe, env, argv, log_path, &c->pids[id], errmsg, errmsg_size);
}

int spawn_replica_stop(struct spawn_cluster *c, uint32_t id, int sig, uint64_t wait_ms,
                       int *wstatus)
{
    TRONE_ASSERT(id < c->replica_count);
    if (c->pids[id] == 0) {
        if (wstatus != NULL) {
            *wstatus = 0;
        }
        return 0;
    }
    int rc = spawn_stop(c->set, c->pids[id], sig, wait_ms, wstatus);
    c->pids[id] = 0;
    return rc;
}

int spawn_cluster_check_alive(struct spawn_cluster *c, char *errmsg, size_t errmsg_size)
{
    for (uint32_t id = 0; id < c->replica_count; id++) {
        int st = 0;
        if (c->pids[id] == 0 || !spawn_exited(c->set, c->pids[id], &st)) {
            continue;
        }
        c->pids[id] = 0;
        char how[96];
        char log_path[SPAWN_PATH_MAX];
        spawn_describe_status(st, how, sizeof(how));
        spawn_replica_log(c, id, log_path, sizeof(log_path));
        snprintf(errmsg, errmsg_size, "replica %u %s (see %s)", id, how, log_path);
        return TRONE_EIO;
    }
    return 0;
}

int spawn_cluster_stop(struct spawn_cluster *c, char *errmsg, size_t errmsg_size)
{
    int result = 0;
    for (uint32_t id = 0; id < c->replica_count; id++) {
        if (c->pids[id] != 0) {
            (void)kill(c->pids[id], SIGTERM); /* all at once; each is reaped below */
        }
    }
    for (uint32_t id = 0; id < c->replica_count; id++) {
        int st = 0;
        if (c->pids[id] == 0) {
            continue;
        }
        int rc = spawn_replica_stop(c, id, 0, SPAWN_TERM_WAIT_MS, &st); /* signal 0: sent above */
        if (result == 0 && (rc != 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0)) {
            char how[96];
            spawn_describe_status(st, how, sizeof(how));
            snprintf(errmsg, errmsg_size, "replica %u did not stop cleanly: %s", id,
                     rc != 0 ? "killed after 3 s" : how);
            result = TRONE_EIO;
        }
    }
    return result;
}

/* ---- Waiting for the cluster -------------------------------------------------------------- */

/* 0 when the report shows what spawn_cluster_wait waits for; else TRONE_EBUSY and why. */
static int spawn_cluster_ready(const struct rt_client_status_report *report, uint64_t mask,
                               bool same_state, char *why, size_t why_size)
{
    const struct rt_status *first = NULL;
    for (uint32_t j = 0; j < report->replica_count; j++) {
        const struct rt_client_replica_status *r = &report->replicas[j];
        uint64_t others = mask & ~(UINT64_C(1) << j);
        if (((mask >> j) & 1u) == 0) {
            continue;
        }
        if (!r->answered) {
            snprintf(why, why_size, "replica %u does not answer (%s)", j, r->error);
            return TRONE_EBUSY;
        }
        const struct rt_status *st = &r->status;
        if (st->view_changing || (st->peers & others) != others) {
            snprintf(why, why_size, "replica %u is %s", j,
                     st->view_changing ? "changing view" : "not connected to every peer");
            return TRONE_EBUSY;
        }
        if (first == NULL) {
            first = st;
            continue;
        }
        bool same = st->view == first->view;
        if (same_state) {
            same = same && st->executed == first->executed &&
                   memcmp(st->digest, first->digest, TRONE_HASH_LEN) == 0;
        }
        if (!same) {
            snprintf(
                why, why_size, "replicas %u and %u differ (view %llu/%llu, executed %llu/%llu)",
                first->replica, j, (unsigned long long)first->view, (unsigned long long)st->view,
                (unsigned long long)first->executed, (unsigned long long)st->executed);
            return TRONE_EBUSY;
        }
    }
    return 0;
}

int spawn_cluster_wait(struct spawn_cluster *c, struct rt_client *client, uint64_t mask,
                       bool same_state, uint64_t timeout_ms, struct rt_client_status_report *report,
                       char *errmsg, size_t errmsg_size)
{
    uint64_t deadline = spawn_now_ms() + timeout_ms;
    char why[256] = "no status yet";
    for (;;) {
        int rc = spawn_cluster_check_alive(c, errmsg, errmsg_size);
        if (rc != 0) {
            return rc;
        }
        (void)rt_client_status(client, SPAWN_STATUS_POLL_MS, report);
        if (spawn_cluster_ready(report, mask, same_state, why, sizeof(why)) == 0) {
            return 0;
        }
        if (spawn_now_ms() >= deadline) {
            break;
        }
        spawn_sleep_ms(50);
    }
    snprintf(errmsg, errmsg_size, "not settled within %.1f s: %s", (double)timeout_ms / 1000.0,
             why);
    return TRONE_ETIMEDOUT;
}
