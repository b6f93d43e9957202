package org.dedupsnapshotter.lazy.registry;

import java.io.FilterInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.ScheduledThreadPoolExecutor;
import java.util.concurrent.TimeUnit;

/**
 * An answer's body that may not stall: when no byte has arrived for the stall limit, or the request's deadline has
 * passed, it is closed, and the read waiting on it (and any later one) fails with a {@link TransportException} —
 * retryable — instead of waiting for ever. Any other failure of the link while reading is one too.
 * <p>
 * Cost when nothing fails: a clock read and a volatile write per read, and one timer check per stall limit of
 * transfer (a body that ends sooner cancels its one timer).
 */
final class WatchedBody extends FilterInputStream {
    private static final ScheduledThreadPoolExecutor TIMER = timer();

    private final String what;
    private final long stallNanos, deadlineNanos;
    private volatile long lastProgress = System.nanoTime();
    private volatile String stalled;
    private volatile boolean closed;
    private volatile ScheduledFuture<?> check;

    /** in watched from now: closed once it stalls for stallNanos, or at deadlineNanos (System.nanoTime). */
    WatchedBody(InputStream in, String what, long stallNanos, long deadlineNanos) {
        super(in);
        this.what = what;
        this.stallNanos = stallNanos;
        this.deadlineNanos = deadlineNanos;
        scheduleCheck(System.nanoTime());
    }

    private static ScheduledThreadPoolExecutor timer() {
        ScheduledThreadPoolExecutor t = new ScheduledThreadPoolExecutor(1, Thread.ofPlatform().daemon(true).name("registry-body-watch").factory());
        t.setRemoveOnCancelPolicy(true); // bodies that end in time leave nothing behind
        return t;
    }

    private void scheduleCheck(long now) {
        long next = Math.min(lastProgress + stallNanos, deadlineNanos);
        check = TIMER.schedule(this::check, Math.max(0, next - now), TimeUnit.NANOSECONDS);
    }

    private void check() {
        if (closed) return;
        long now = System.nanoTime();
        if (now >= deadlineNanos) stalled = "its deadline passed while the body was arriving";
        else if (now - lastProgress >= stallNanos) stalled = "no byte of the body for " + stallNanos / 1_000_000 + " ms";
        else {
            scheduleCheck(now);
            return;
        }
        try {
            in.close(); // wakes the read waiting on it
        } catch (IOException ignored) {
            // closed enough: the read fails either way
        }
    }

    @Override
    public int read() throws IOException {
        try {
            int b = in.read();
            if (b >= 0) lastProgress = System.nanoTime();
            return b;
        } catch (IOException e) {
            throw failure(e);
        }
    }

    @Override
    public int read(byte[] b, int off, int len) throws IOException {
        try {
            int n = in.read(b, off, len);
            if (n > 0) lastProgress = System.nanoTime();
            return n;
        } catch (IOException e) {
            throw failure(e);
        }
    }

    @Override
    public long skip(long n) throws IOException {
        try {
            long k = in.skip(n);
            if (k > 0) lastProgress = System.nanoTime();
            return k;
        } catch (IOException e) {
            throw failure(e);
        }
    }

    private IOException failure(IOException e) {
        if (e instanceof TransportException) return e;
        String why = stalled != null ? stalled : e.getMessage() == null ? e.getClass().getSimpleName() : e.getMessage();
        return new TransportException(what + ": " + why, e);
    }

    @Override
    public void close() throws IOException {
        closed = true;
        ScheduledFuture<?> c = check;
        if (c != null) c.cancel(false);
        in.close();
    }
}
