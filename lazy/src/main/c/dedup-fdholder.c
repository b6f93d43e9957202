/*
 * dedup-fdholder PIDFILE PID FD [MOUNTPOINT]: keeps a duplicate of process PID's file descriptor FD open for as
 * long as it lives, so the kernel object behind it outlives PID. The lazy loader's fanotify group must not die with the
 * daemon: if it did, reads of pool ranges not yet fetched would be allowed and return zeros (shared/DESIGN.md,
 * "Lazy loading"). The next daemon takes the fd back with pidfd_getfd(2). It does nothing else: small enough to
 * never fail. Writes "PID FD\n" (its own pid and the fd number it holds) to PIDFILE when it holds the fd.
 * Exits on SIGTERM or SIGKILL, or once MOUNTPOINT (the pool's marked bind mount, the only way readers reach what the
 * group guards) is no longer a mount point: then nothing it guards is mounted, and nothing ever stops it otherwise.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#define CHECK_SECONDS 5

static void die(const char *what) {
    fprintf(stderr, "dedup-fdholder: %s: %s\n", what, strerror(errno));
    exit(1);
}

/* Whether path is a mount point: a mount point field (the 5th, octal-escaped) of /proc/self/mountinfo equals it. */
static int mounted(const char *path) {
    char want[8192], line[16384];
    size_t n = 0;
    for (const char *p = path; *p && n + 5 < sizeof want; p++) {
        if (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\\') n += (size_t) snprintf(want + n, 5, "\\%03o", (unsigned char) *p);
        else want[n++] = *p;
    }
    want[n] = 0;
    FILE *f = fopen("/proc/self/mountinfo", "r");
    if (!f) return 1; /* cannot tell: keep holding */
    int found = 0;
    while (!found && fgets(line, sizeof line, f)) {
        char *field = line;
        for (int i = 0; i < 4 && field; i++) {
            field = strchr(field, ' ');
            if (field) field++;
        }
        if (!field) continue;
        char *end = strchr(field, ' ');
        if (end && (size_t) (end - field) == n && memcmp(field, want, n) == 0) found = 1;
    }
    fclose(f);
    return found;
}

int main(int argc, char **argv) {
    if (argc != 4 && argc != 5) {
        fprintf(stderr, "usage: dedup-fdholder PIDFILE PID FD [MOUNTPOINT]\n");
        return 2;
    }
    const char *mountpoint = argc == 5 ? argv[4] : NULL;
    const char *pidfile = argv[1];
    long pid = strtol(argv[2], NULL, 10), fd = strtol(argv[3], NULL, 10);
    int pidfd = (int) syscall(SYS_pidfd_open, (pid_t) pid, 0);
    if (pidfd < 0) die("pidfd_open");
    int held = (int) syscall(SYS_pidfd_getfd, pidfd, (int) fd, 0);
    if (held < 0) die("pidfd_getfd");
    close(pidfd);
    if (setsid() < 0 && errno != EPERM) die("setsid"); /* out of the daemon's session and process group */
    signal(SIGHUP, SIG_IGN);
    signal(SIGINT, SIG_IGN);
    signal(SIGPIPE, SIG_IGN);
    char tmp[4096];
    if (snprintf(tmp, sizeof tmp, "%s.tmp", pidfile) >= (int) sizeof tmp) { errno = ENAMETOOLONG; die("pidfile"); }
    FILE *f = fopen(tmp, "w");
    if (!f) die("pidfile");
    fprintf(f, "%ld %d\n", (long) getpid(), held);
    if (fflush(f) != 0 || fsync(fileno(f)) != 0 || fclose(f) != 0) die("pidfile");
    if (rename(tmp, pidfile) != 0) die("pidfile");
    int null = open("/dev/null", O_RDWR);
    if (null >= 0) {
        dup2(null, 0);
        dup2(null, 1);
        dup2(null, 2);
        if (null > 2) close(null);
    }
    if (!mountpoint) for (;;) pause();
    while (mounted(mountpoint)) sleep(CHECK_SECONDS);
    return 0; /* its pid file stays: a daemon that reads it finds no holder at that pid */
}
