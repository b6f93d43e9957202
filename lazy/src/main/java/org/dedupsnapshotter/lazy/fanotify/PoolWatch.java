package org.dedupsnapshotter.lazy.fanotify;

import org.dedupsnapshotter.sys.Errno;
import org.dedupsnapshotter.sys.Fanotify;
import org.dedupsnapshotter.sys.Libc;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicLong;

/**
 * Holds readers of absent pool ranges until their chunks are in place. Lazy layers are mounted with
 * {@code device=} a path under a bind mount of the pool's directory that carries a fanotify pre-content mark
 * (FAN_PRE_ACCESS on the mount, so reads through the plain pool path — fully local layers, the daemon's own I/O —
 * raise no event at all). Each event names the byte range an EROFS read of the pool is about to read; the
 * {@link RangeFiller} makes it present, then the event is answered FAN_ALLOW, or FAN_DENY with EIO when the
 * bytes cannot be had within the deadline: a reader gets the right bytes or an error, never the zeros of a hole.
 *
 * While lazy layers with absent chunks are mounted ({@link #holdGroup}), the group outlives the daemon in
 * {@link FdHolder}'s process; a new daemon takes it back, answers what its predecessor had read but not answered
 * ({@link InFlightJournal}), and goes on serving. With no such layer nothing needs it ({@link #releaseGroup}): a read
 * through the watch then only meets present chunks, and the group may die with the daemon.
 */
public final class PoolWatch implements AutoCloseable {
    private static final Logger log = LoggerFactory.getLogger(PoolWatch.class);
    /** One event per read (48 bytes with its range record), so at most one event is ever read but not yet journaled. */
    private static final int READ_BUFFER = 64;
    /** Event fd numbers below this are swept at takeover even if the journal never saw one so high. */
    private static final int SWEEP_FLOOR = 65536;

    private final int group;
    private final Path holderBinary, pidfile, markedDir;
    private final RangeFiller filler;
    private final Duration deadline;
    private final InFlightJournal journal;
    private final int ownPid = Libc.getpid();
    private volatile FdHolder holder;
    private boolean wantHolder; // guarded by this
    private volatile boolean running = true;
    private final AtomicLong events = new AtomicLong(), waiting = new AtomicLong(), denied = new AtomicLong();
    private final AtomicLong present = new AtomicLong(), fetched = new AtomicLong();
    private volatile java.util.function.LongConsumer held = nanos -> {};

    /**
     * Figures for metrics: events seen, readers waiting now, reads answered with EIO, reads answered at once (their
     * data was there) and reads answered once a fetch brought it.
     */
    public record Figures(long events, long waiting, long denied, long present, long fetched) {}

    /** Told, for each reader that waited for a fetch, how long it was held (nanoseconds), whatever the answer. */
    public void onHeld(java.util.function.LongConsumer l) { held = l; }

    private PoolWatch(int group, FdHolder holder, Path holderBinary, Path pidfile, Path markedDir, RangeFiller filler, Duration deadline,
                      InFlightJournal journal) {
        this.group = group;
        this.markedDir = markedDir;
        this.holder = holder;
        this.holderBinary = holderBinary;
        this.pidfile = pidfile;
        this.filler = filler;
        this.deadline = deadline;
        this.journal = journal;
    }

    /**
     * Makes markedDir a bind mount of poolDir carrying the pre-content mark (taking over the group a previous daemon
     * left with its holder, if any), answers what the previous daemon left pending, and starts serving events.
     */
    public static PoolWatch start(Path poolDir, Path markedDir, Path stateDir, Path holderBinary, RangeFiller filler, Duration deadline) throws IOException {
        Files.createDirectories(stateDir);
        Files.createDirectories(markedDir);
        ensureBindMount(poolDir, markedDir);
        Path pidfile = stateDir.resolve("holder.pid");
        InFlightJournal journal = InFlightJournal.open(stateDir.resolve("inflight"));
        var taken = FdHolder.takeBack(pidfile, holderBinary);
        int group;
        FdHolder holder;
        boolean takenOver = taken.isPresent();
        if (takenOver) {
            group = taken.get().group();
            holder = taken.get().holder();
            if (!hasMountMark(group, markedDir)) Fanotify.markMount(group, markedDir.toString());
            log.info("lazy loading: took the fanotify group back from holder pid {}", holder.pid);
        } else {
            group = Fanotify.initPreContent();
            Fanotify.markMount(group, markedDir.toString());
            if (!journal.pending().isEmpty())
                log.error("lazy loading: the previous fanotify group is gone (its holder died with the daemon): readers of lazy layers "
                        + "mounted before may have read zeros; remount those layers (restart their containers)");
            journal.clearAll();
            holder = null;
            log.info("lazy loading: new fanotify group on {}", markedDir);
        }
        PoolWatch w = new PoolWatch(group, holder, holderBinary, pidfile, markedDir, filler, deadline, journal);
        w.wantHolder = takenOver;
        if (takenOver) w.answerPredecessor();
        Thread.ofPlatform().name("pool-watch").daemon(true).start(w::serve);
        Thread.ofPlatform().name("pool-watch-holder").daemon(true).start(w::keepHolder);
        return w;
    }

    public Figures figures() { return new Figures(events.get(), waiting.get(), denied.get(), present.get(), fetched.get()); }

    /** The fd holder's pid, or -1 when nothing needs one. */
    public long holderPid() {
        FdHolder h = holder;
        return h == null ? -1 : h.pid;
    }

    /** Lazy layers with absent chunks are (about to be) mounted: the group must outlive this daemon. */
    public synchronized void holdGroup() throws IOException {
        wantHolder = true;
        if (holder != null) return;
        holder = FdHolder.start(holderBinary, pidfile, group, markedDir);
        log.info("lazy loading: fanotify group held by pid {}", holder.pid);
    }

    /** No lazy layer misses a chunk any more: the holder can go. */
    public synchronized void releaseGroup() {
        wantHolder = false;
        FdHolder h = holder;
        if (h == null) return;
        holder = null;
        h.stop(pidfile);
        log.info("lazy loading: every lazy layer is complete; fd holder pid {} stopped", h.pid);
    }

    /** Fills and answers every event the previous daemon recorded, then denies any it read without recording. */
    private void answerPredecessor() {
        List<InFlightJournal.Pending> pending = journal.pending();
        int answered = 0;
        for (InFlightJournal.Pending p : pending) {
            int response = Fanotify.FAN_ALLOW;
            try {
                CompletableFuture<Void> f = filler.fill(-1, p.offset(), p.count());
                if (f != null) f.get(deadline.toMillis(), TimeUnit.MILLISECONDS);
            } catch (Throwable e) {
                FatalErrors.haltIfFatal(e, "lazy loading: a read the previous daemon left pending");
                log.warn("lazy loading: a read the previous daemon left pending ({}+{}) failed: {}", p.offset(), p.count(), e.getMessage());
                response = Fanotify.denyWith(Errno.EIO);
            }
            try {
                if (Fanotify.respond(group, p.fd(), response)) answered++;
            } catch (Errno e) {
                log.warn("lazy loading: answering a pending read: {}", e.getMessage());
            }
        }
        journal.clearAll();
        // an event read in the instant before it was journaled: its range is unknown, so its reader gets EIO, not a hang
        int swept = 0, bound = Math.max(SWEEP_FLOOR, journal.highestFd() * 2);
        for (int fd = 0; fd < bound; fd++) {
            try {
                if (Fanotify.respond(group, fd, Fanotify.denyWith(Errno.EIO))) swept++;
            } catch (Errno e) {
                break;
            }
        }
        if (answered > 0 || swept > 0)
            log.info("lazy loading: answered {} reads the previous daemon left pending; {} unrecorded ones got EIO", answered, swept);
    }

    private void serve() {
        try (Arena arena = Arena.ofShared()) {
            MemorySegment buf = arena.allocate(READ_BUFFER, 8);
            while (running) {
                List<Fanotify.Event> batch;
                try {
                    batch = Fanotify.read(group, buf, 500);
                } catch (Throwable e) { // an Errno, or anything else: the watch goes on (a VirtualMachineError ends the daemon)
                    FatalErrors.haltIfFatal(e, "lazy loading: reading fanotify events");
                    if (!running) return;
                    log.error("lazy loading: reading fanotify events failed: {}", e.getMessage());
                    sleepQuietly(100);
                    continue;
                }
                for (Fanotify.Event e : batch) {
                    try {
                        handle(e);
                    } catch (Throwable t) { // answering itself failed: nothing more can be done for that reader, the others are served
                        FatalErrors.haltIfFatal(t, "lazy loading: answering a fanotify event");
                        log.error("lazy loading: answering a read of pool range {}+{} failed: {}", e.offset(), e.count(), t.toString());
                    }
                }
            }
        }
    }

    /** Answers the event now or hands it to its fill's future; whatever throws here, its reader still gets an answer. */
    private void handle(Fanotify.Event e) {
        events.incrementAndGet();
        if (e.fd() < 0) return; // an overflow notice: permission events are never dropped, nothing to answer
        int slot = -1;
        boolean handedOver = false;
        try {
            if (e.pid() == ownPid) { // never wait on ourselves
                handedOver = true;
                answer(e.fd(), -1, Fanotify.FAN_ALLOW);
                return;
            }
            slot = journal.record(e.fd(), e.offset(), e.count());
            CompletableFuture<Void> f = filler.fill(e.pid(), e.offset(), e.count());
            if (f == null || (f.isDone() && !f.isCompletedExceptionally())) {
                handedOver = true;
                present.incrementAndGet();
                answer(e.fd(), slot, Fanotify.FAN_ALLOW);
                return;
            }
            int s = slot;
            long since = System.nanoTime();
            waiting.incrementAndGet();
            // the deadline is the last line of defence: orTimeout answers even if f never completes
            f.copy().orTimeout(deadline.toMillis(), TimeUnit.MILLISECONDS).whenComplete((v, err) -> settle(e, s, err, since));
            handedOver = true;
        } catch (Throwable ex) { // the filler (or anything here) failed: EIO for this reader, and the watch goes on
            try {
                if (!handedOver) deny(e.fd(), slot);
            } finally {
                FatalErrors.haltIfFatal(ex, "lazy loading: serving a read of pool range " + e.offset() + "+" + e.count());
            }
            log.warn("lazy loading: read of pool range {}+{} gets EIO: {}", e.offset(), e.count(), ex.toString());
        }
    }

    /** A waited-for fill ended: the answer first, then the log (which could itself fail). */
    private void settle(Fanotify.Event e, int slot, Throwable err, long since) {
        waiting.decrementAndGet();
        if (err == null) {
            answer(e.fd(), slot, Fanotify.FAN_ALLOW);
            fetched.incrementAndGet();
            reportHeld(since);
            return;
        }
        deny(e.fd(), slot);
        reportHeld(since);
        Throwable cause = err instanceof CompletionException && err.getCause() != null ? err.getCause() : err;
        FatalErrors.haltIfFatal(cause, "lazy loading: fetching pool range " + e.offset() + "+" + e.count());
        log.warn("lazy loading: read of pool range {}+{} by pid {} gets EIO: {}", e.offset(), e.count(), e.pid(),
                cause instanceof TimeoutException ? "not fetched within " + deadline.toMillis() + " ms" : cause.toString());
    }

    private void reportHeld(long since) {
        try {
            held.accept(System.nanoTime() - since);
        } catch (RuntimeException ex) {
            log.warn("lazy loading: reporting a reader's wait: {}", ex.toString());
        }
    }

    private void deny(int fd, int slot) {
        denied.incrementAndGet();
        answer(fd, slot, Fanotify.denyWith(Errno.EIO));
    }

    /** Answer, then forget the journal slot, then close: the fd number is not reused while its slot is live. */
    private void answer(int fd, int slot, int response) {
        try {
            Fanotify.respond(group, fd, response);
        } catch (Errno ex) {
            log.warn("lazy loading: answering fanotify event fd {}: {}", fd, ex.getMessage());
        }
        journal.clear(slot);
        Libc.close(fd);
    }

    /** A holder that dies while needed is replaced at once: without one, a daemon crash would leave the group to die. */
    private void keepHolder() {
        while (running) {
            try {
                FdHolder h = holder;
                if (h == null || !h.awaitExit(1000)) {
                    if (h == null) sleepQuietly(1000);
                    continue;
                }
                synchronized (this) {
                    if (!running || holder != h) continue; // released (stopped on purpose) or already replaced
                    log.warn("lazy loading: fd holder pid {} exited; starting another", h.pid);
                    h.close();
                    holder = wantHolder ? FdHolder.start(holderBinary, pidfile, group, markedDir) : null;
                }
            } catch (Throwable e) { // this thread must not end: without it a dead holder is never replaced
                FatalErrors.haltIfFatal(e, "lazy loading: keeping the fd holder");
                log.error("lazy loading: cannot restart the fd holder: {}", e.toString());
                sleepQuietly(1000);
            }
        }
    }

    /** Stops serving; the holder and the group stay, for the next daemon. */
    @Override
    public void close() {
        running = false;
    }

    private static void sleepQuietly(long ms) {
        try {
            Thread.sleep(ms);
        } catch (InterruptedException ie) {
            Thread.currentThread().interrupt();
        }
    }

    static void ensureBindMount(Path poolDir, Path markedDir) throws IOException {
        if (mountId(markedDir) >= 0) return;
        Libc.mount(poolDir.toString(), markedDir.toString(), null, Libc.MS_BIND, null);
    }

    /** The mount id of the mount whose mount point is dir, or -1 (from /proc/self/mountinfo). */
    static int mountId(Path dir) throws IOException {
        String target = dir.toString();
        int found = -1;
        for (String line : Files.readAllLines(Path.of("/proc/self/mountinfo"))) {
            String[] f = line.split(" ", 6);
            if (f.length > 4 && unescape(f[4]).equals(target)) found = Integer.parseInt(f[0]); // the last one is on top
        }
        return found;
    }

    /** Whether the group's fdinfo shows a mark on the mount at dir. */
    static boolean hasMountMark(int group, Path dir) throws IOException {
        int id = mountId(dir);
        String want = "fanotify mnt_id:" + Integer.toHexString(id) + " ";
        for (String line : Files.readAllLines(Path.of("/proc/self/fdinfo/" + group)))
            if (line.startsWith(want)) return true;
        return false;
    }

    private static String unescape(String s) {
        return s.replace("\\040", " ").replace("\\011", "\t").replace("\\012", "\n").replace("\\134", "\\");
    }
}
