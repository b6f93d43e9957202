package org.dedupsnapshotter.lazy.fanotify;

import org.dedupsnapshotter.sys.Errno;
import org.dedupsnapshotter.sys.Fanotify;
import org.dedupsnapshotter.sys.Libc;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Optional;

/**
 * The small process (bin/dedup-fdholder) that keeps a copy of the fanotify group's fd, so the group outlives the
 * daemon, and the daemon's side of it: start one, find the one a previous daemon started and take the fd back
 * with pidfd_getfd(2).
 */
final class FdHolder {
    private static final Logger log = LoggerFactory.getLogger(FdHolder.class);

    final long pid;
    final int pidfd;

    private FdHolder(long pid, int pidfd) {
        this.pid = pid;
        this.pidfd = pidfd;
    }

    /** The fd a live holder (recorded in pidfile) keeps, duplicated into this process; empty when there is none. */
    static Optional<Taken> takeBack(Path pidfile, Path binary) throws IOException {
        if (!Files.exists(pidfile)) return Optional.empty();
        String[] parts = Files.readString(pidfile, StandardCharsets.US_ASCII).strip().split(" ");
        long pid;
        int fd;
        try {
            pid = Long.parseLong(parts[0]);
            fd = Integer.parseInt(parts[1]);
        } catch (RuntimeException e) {
            log.warn("ignoring unreadable holder pid file {}", pidfile);
            return Optional.empty();
        }
        if (!isHolder(pid, binary)) return Optional.empty();
        int pidfd;
        try {
            pidfd = Fanotify.pidfdOpen(pid);
        } catch (Errno e) {
            return Optional.empty(); // it just died
        }
        if (!isHolder(pid, binary)) { // the pid could have been reused between the check and pidfd_open
            Libc.close(pidfd);
            return Optional.empty();
        }
        try {
            int group = Fanotify.pidfdGetfd(pidfd, fd);
            return Optional.of(new Taken(new FdHolder(pid, pidfd), group));
        } catch (Errno e) {
            Libc.close(pidfd);
            throw new IOException("cannot take the fanotify group back from holder pid " + pid + ": " + e.getMessage(), e);
        }
    }

    record Taken(FdHolder holder, int group) {}

    /**
     * Starts a holder of this process's fd and waits until it holds it. It exits by itself once guarded (the marked
     * mount through which readers reach the pool) is no longer a mount point: then nothing it guards is mounted.
     */
    static FdHolder start(Path binary, Path pidfile, int fd, Path guarded) throws IOException {
        Files.deleteIfExists(pidfile);
        if (!Files.isExecutable(binary))
            throw new IOException("the fd holder " + binary + " is missing: run `make build` (it keeps lazy layers readable across daemon restarts)");
        Process p = new ProcessBuilder(binary.toString(), pidfile.toString(), Long.toString(Libc.getpid()), Integer.toString(fd), guarded.toString())
                .redirectOutput(ProcessBuilder.Redirect.DISCARD).redirectError(ProcessBuilder.Redirect.INHERIT).start();
        long deadline = System.nanoTime() + Duration.ofSeconds(10).toNanos();
        while (!Files.exists(pidfile)) {
            if (!p.isAlive()) throw new IOException("the fd holder " + binary + " exited with " + p.exitValue());
            if (System.nanoTime() > deadline) {
                p.destroyForcibly();
                throw new IOException("the fd holder " + binary + " did not start within 10 s");
            }
            try {
                Thread.sleep(5);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new IOException("interrupted starting the fd holder", e);
            }
        }
        return new FdHolder(p.pid(), Fanotify.pidfdOpen(p.pid()));
    }

    /** Blocks up to timeoutMillis; true once the holder has exited. */
    boolean awaitExit(int timeoutMillis) throws Errno { return Fanotify.pollIn(pidfd, timeoutMillis); }

    void close() { Libc.close(pidfd); }

    /** Stops the holder (it is not needed any more) and forgets its pid file. */
    void stop(Path pidfile) {
        Libc.kill((int) pid, 9);
        close();
        try {
            Files.deleteIfExists(pidfile);
        } catch (IOException e) {
            log.debug("removing {}: {}", pidfile, e.getMessage());
        }
    }

    private static boolean isHolder(long pid, Path binary) {
        try {
            Path exe = Files.readSymbolicLink(Path.of("/proc", Long.toString(pid), "exe"));
            return exe.getFileName().toString().equals(binary.getFileName().toString());
        } catch (IOException e) {
            return false;
        }
    }
}
