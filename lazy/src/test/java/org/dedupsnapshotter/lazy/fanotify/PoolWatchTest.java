package org.dedupsnapshotter.lazy.fanotify;

import org.dedupsnapshotter.sys.Libc;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.IntConsumer;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The pool watch on this kernel, for real: a sparse "pool" file, read by another process (dd) through the marked
 * bind mount, gets its bytes only once the filler put them there; a failed or late fill gives the reader EIO, never
 * the zeros of the hole; and a second watch that takes the group back from the holder answers what the first left
 * pending. (EROFS on top of this is covered by the end-to-end tests.)
 */
class PoolWatchTest {
    static final int SIZE = 1 << 20;
    Path dir, pool, marked, state, holder;
    byte[] data = new byte[SIZE];
    PoolWatch watch;

    @BeforeEach
    void setUp() throws Exception {
        dir = Files.createTempDirectory("dedup-poolwatch-");
        Path poolDir = Files.createDirectories(dir.resolve("pool"));
        pool = poolDir.resolve("pool.0");
        try (RandomAccessFile f = new RandomAccessFile(pool.toFile(), "rw")) {
            f.setLength(SIZE); // all hole
        }
        marked = dir.resolve("pool-lazy");
        state = dir.resolve("lazy");
        holder = dir.resolve("dedup-fdholder");
        Path src = Path.of(System.getProperty("user.dir")).resolve("src/main/c/dedup-fdholder.c");
        Process cc = new ProcessBuilder("cc", "-O2", "-o", holder.toString(), src.toString()).inheritIO().start();
        assertEquals(0, cc.waitFor());
        new Random(7).nextBytes(data);
    }

    @AfterEach
    void tearDown() throws Exception {
        if (watch != null) watch.close();
        if (Files.exists(state.resolve("holder.pid"))) {
            long pid = Long.parseLong(Files.readString(state.resolve("holder.pid")).split(" ")[0]);
            Libc.kill((int) pid, 9);
        }
        if (PoolWatch.mountId(marked) >= 0) Libc.umount2(marked.toString(), Libc.MNT_DETACH);
        new ProcessBuilder("rm", "-rf", "--one-file-system", dir.toString()).start().waitFor();
    }

    /** Reads the whole pool through the marked mount in another process; returns its exit code and the bytes. */
    private CompletableFuture<Object[]> readThroughMark() {
        return CompletableFuture.supplyAsync(() -> {
            try {
                Path out = dir.resolve("out-" + System.nanoTime());
                Process p = new ProcessBuilder("dd", "if=" + marked.resolve("pool.0"), "of=" + out, "bs=65536", "status=none")
                        .redirectErrorStream(true).start();
                String err = new String(p.getInputStream().readAllBytes());
                int code = p.waitFor();
                return new Object[] {code, Files.exists(out) ? Files.readAllBytes(out) : new byte[0], err};
            } catch (IOException | InterruptedException e) {
                throw new RuntimeException(e);
            }
        }, Thread::startVirtualThread); // not the common pool: the fillers may run there
    }

    private void fillFromData(long offset, long count) throws IOException {
        try (RandomAccessFile f = new RandomAccessFile(pool.toFile(), "rw")) { // the plain path: no events
            f.seek(offset);
            f.write(data, (int) offset, (int) Math.min(count, SIZE - offset));
        }
    }

    @Test
    void readerWaitsForTheFillAndGetsTheRightBytes() throws Exception {
        AtomicInteger asked = new AtomicInteger();
        watch = PoolWatch.start(pool.getParent(), marked, state, holder, (pid, off, cnt) -> {
            asked.incrementAndGet();
            return CompletableFuture.runAsync(() -> {
                try {
                    Thread.sleep(50);
                    fillFromData(off, cnt);
                } catch (Exception e) {
                    throw new RuntimeException(e);
                }
            });
        }, Duration.ofSeconds(10));
        Object[] r = readThroughMark().get(30, TimeUnit.SECONDS);
        assertEquals(0, r[0], "dd failed: " + r[2]);
        assertArrayEquals(data, (byte[]) r[1]);
        assertTrue(asked.get() > 0, "no pre-access events reached the filler");
    }

    @Test
    void aFailedFillIsAnIoErrorNotZeros() throws Exception {
        watch = PoolWatch.start(pool.getParent(), marked, state, holder,
                (pid, off, cnt) -> CompletableFuture.failedFuture(new IOException("registry unreachable")), Duration.ofSeconds(10));
        Object[] r = readThroughMark().get(30, TimeUnit.SECONDS);
        assertNotEquals(0, r[0]);
        assertTrue(((String) r[2]).contains("Input/output error"), (String) r[2]);
        assertEquals(0, ((byte[]) r[1]).length, "the reader got bytes from a hole");
    }

    @Test
    void aFillPastTheDeadlineIsAnIoError() throws Exception {
        watch = PoolWatch.start(pool.getParent(), marked, state, holder, (pid, off, cnt) -> new CompletableFuture<>(), Duration.ofMillis(500));
        long t0 = System.nanoTime();
        Object[] r = readThroughMark().get(30, TimeUnit.SECONDS);
        long ms = (System.nanoTime() - t0) / 1_000_000;
        assertNotEquals(0, r[0]);
        assertTrue(((String) r[2]).contains("Input/output error"), (String) r[2]);
        assertTrue(ms < 5000, "the reader waited " + ms + " ms past a 500 ms deadline");
        assertEquals(1, watch.figures().denied());
    }

    /** The filler as the daemon's: bytes put in place from data, at once. */
    private CompletableFuture<Void> fillNow(long off, long cnt) {
        try {
            fillFromData(off, cnt);
            return null;
        } catch (IOException e) {
            return CompletableFuture.failedFuture(e);
        }
    }

    @Test
    void aFillerThatThrowsAnErrorGivesThatReaderEioAndTheWatchGoesOn() throws Exception {
        AtomicInteger calls = new AtomicInteger();
        Duration deadline = Duration.ofSeconds(3);
        watch = PoolWatch.start(pool.getParent(), marked, state, holder, (pid, off, cnt) -> {
            if (calls.getAndIncrement() == 0) throw new Error("boom");
            return fillNow(off, cnt);
        }, deadline);
        long t0 = System.nanoTime();
        Object[] first = readThroughMark().get(30, TimeUnit.SECONDS);
        long ms = (System.nanoTime() - t0) / 1_000_000;
        assertNotEquals(0, first[0], "the read whose fill threw got no error");
        assertTrue(((String) first[2]).contains("Input/output error"), (String) first[2]);
        assertEquals(0, ((byte[]) first[1]).length, "the reader got bytes from a hole");
        assertTrue(ms < deadline.toMillis(), "the reader waited " + ms + " ms: longer than the read deadline");
        Object[] second = readThroughMark().get(30, TimeUnit.SECONDS);
        assertEquals(0, second[0], "the watch no longer serves after an Error: " + second[2]);
        assertArrayEquals(data, (byte[]) second[1]);
    }

    @Test
    void aFillThatFailsWithAnErrorLaterGivesEio() throws Exception {
        watch = PoolWatch.start(pool.getParent(), marked, state, holder,
                (pid, off, cnt) -> CompletableFuture.runAsync(() -> { throw new Error("boom later"); }), Duration.ofSeconds(10));
        long t0 = System.nanoTime();
        Object[] r = readThroughMark().get(30, TimeUnit.SECONDS);
        assertNotEquals(0, r[0]);
        assertTrue(((String) r[2]).contains("Input/output error"), (String) r[2]);
        assertTrue(System.nanoTime() - t0 < 5_000_000_000L, "the reader waited for the deadline, not for the failed fill");
    }

    @Test
    void outOfMemoryAnswersTheReaderThenEndsTheDaemon() throws Exception {
        List<Integer> halted = new CopyOnWriteArrayList<>();
        IntConsumer realHalt = FatalErrors.halt;
        FatalErrors.halt = halted::add;
        try {
            watch = PoolWatch.start(pool.getParent(), marked, state, holder, (pid, off, cnt) -> {
                throw new OutOfMemoryError("test: Java heap space");
            }, Duration.ofSeconds(10));
            Object[] r = readThroughMark().get(30, TimeUnit.SECONDS);
            assertNotEquals(0, r[0]);
            assertTrue(((String) r[2]).contains("Input/output error"), (String) r[2]);
            // the daemon ends once the reader is answered: right after the read returns, not before
            for (long end = System.nanoTime() + 5_000_000_000L; halted.isEmpty() && System.nanoTime() < end; ) Thread.sleep(10);
            assertFalse(halted.isEmpty(), "an OutOfMemoryError did not end the daemon");
            assertEquals(FatalErrors.EXIT_CODE, halted.getFirst());
        } finally {
            FatalErrors.halt = realHalt;
        }
    }

    @Test
    void theHolderExitsOnceItsDaemonIsGoneAndTheMarkedMountUnmounted() throws Exception {
        watch = PoolWatch.start(pool.getParent(), marked, state, holder, (pid, off, cnt) -> null, Duration.ofSeconds(10));
        watch.holdGroup();
        long pid = watch.holderPid();
        watch.close(); // the daemon is gone: nothing will stop its holder
        Thread.sleep(6000);
        assertTrue(ProcessHandle.of(pid).map(ProcessHandle::isAlive).orElse(false), "the holder left while the marked mount was still there");
        Libc.umount2(marked.toString(), Libc.MNT_DETACH); // the lazy mounts are gone too
        long until = System.nanoTime() + 15_000_000_000L;
        while (ProcessHandle.of(pid).map(ProcessHandle::isAlive).orElse(false) && System.nanoTime() < until) Thread.sleep(100);
        assertFalse(ProcessHandle.of(pid).map(ProcessHandle::isAlive).orElse(false), "the holder outlives everything it guards");
    }

    @Test
    void aNewWatchTakesTheGroupBackAndAnswersWhatTheOldOneLeftPending() throws Exception {
        PoolWatch first = PoolWatch.start(pool.getParent(), marked, state, holder, (pid, off, cnt) -> new CompletableFuture<>(), Duration.ofMinutes(5));
        first.holdGroup(); // as the daemon does once a lazy layer with absent chunks is mounted
        long holderPid = first.holderPid();
        assertTrue(holderPid > 0);
        CompletableFuture<Object[]> reader = readThroughMark();
        for (int i = 0; i < 100 && first.figures().waiting() == 0; i++) Thread.sleep(50);
        assertEquals(1, first.figures().waiting(), "the reader is not waiting on the first watch");
        first.close(); // it stops serving, leaving its event read but unanswered (as a killed daemon would)
        Thread.sleep(700);
        assertTrue(!reader.isDone(), "the reader went on without an answer");
        watch = PoolWatch.start(pool.getParent(), marked, state, holder, (pid, off, cnt) -> {
            try {
                fillFromData(off, cnt);
                return null;
            } catch (IOException e) {
                return CompletableFuture.failedFuture(e);
            }
        }, Duration.ofSeconds(10));
        assertEquals(holderPid, watch.holderPid(), "the second watch did not take the group back from the same holder");
        Object[] r = reader.get(30, TimeUnit.SECONDS);
        assertEquals(0, r[0], "dd failed: " + r[2]);
        assertTrue(Arrays.equals(data, (byte[]) r[1]), "the reader got wrong bytes");
    }
}
