package org.dedupsnapshotter.lazy.registry;

import java.io.IOException;
import java.io.InterruptedIOException;
import java.time.Duration;
import java.util.Optional;
import java.util.concurrent.ThreadLocalRandom;
import java.util.function.DoubleSupplier;
import java.util.function.LongSupplier;

/**
 * Attempts of a registry request until one succeeds, one fails for good, or the caller's deadline passes: between
 * attempts an exponential backoff with full jitter (a random wait up to base·2^n, capped), or the registry's
 * Retry-After when that is longer and fits before the deadline (a 0 is no licence to hammer). Worth retrying: 5xx, 429, and the link failing
 * ({@link TransportException}: reset, refused, cut short, stalled). Never: other 4xx, wrong bytes, anything else.
 * The first attempt runs at once and costs nothing more than the call itself.
 */
public final class RetryPolicy {
    /** Sleeps nanos (tests pass one that only advances their clock). */
    public interface Sleeper {
        void sleep(long nanos) throws InterruptedException;
    }

    /** One attempt; n counts from 0. */
    public interface Attempt<T> {
        T run(int n) throws IOException;
    }

    private static final Sleeper THREAD_SLEEP = nanos -> Thread.sleep(Duration.ofNanos(nanos));
    public static final RetryPolicy STANDARD = new RetryPolicy(Duration.ofMillis(100), Duration.ofSeconds(2),
            System::nanoTime, THREAD_SLEEP, () -> ThreadLocalRandom.current().nextDouble());

    private final long baseNanos, capNanos;
    private final LongSupplier clock;
    private final Sleeper sleeper;
    private final DoubleSupplier random;

    public RetryPolicy(Duration base, Duration cap, LongSupplier clock, Sleeper sleeper, DoubleSupplier random) {
        this.baseNanos = base.toNanos();
        this.capNanos = cap.toNanos();
        this.clock = clock;
        this.sleeper = sleeper;
        this.random = random;
    }

    /** Now on this policy's clock (System.nanoTime unless a test's). */
    public long now() { return clock.getAsLong(); }

    /**
     * Runs attempt until it succeeds; a retryable failure is retried after a wait while the next attempt can start
     * before deadlineNanos (on this policy's clock); otherwise the last failure is thrown, at the deadline (or at once
     * for one not worth retrying). One attempt always runs.
     */
    public <T> T call(long deadlineNanos, Attempt<T> attempt) throws IOException {
        for (int n = 0; ; n++) {
            try {
                return attempt.run(n);
            } catch (IOException e) {
                RegistryErrors.failed(e);
                if (!retryable(e)) throw e;
                long wait = waitBefore(n + 1, e, deadlineNanos);
                if (wait < 0) throw e;
                RegistryErrors.retried();
                try {
                    if (wait > 0) sleeper.sleep(wait);
                    if (clock.getAsLong() >= deadlineNanos) throw e; // the deadline came while waiting: that failure is the answer
                } catch (InterruptedException ie) {
                    Thread.currentThread().interrupt();
                    InterruptedIOException stop = new InterruptedIOException("interrupted while waiting to retry: " + e.getMessage());
                    stop.addSuppressed(e);
                    throw stop;
                }
            }
        }
    }

    /**
     * How long to wait before attempt n (n >= 1) after failure e, or -1 to give up now: a random wait in
     * [0, min(cap, base·2^(n-1))], or the registry's Retry-After if that is longer; never past the deadline (a wait
     * that reaches it ends the call there, without another attempt). A Retry-After reaching past the deadline gives
     * up at once: asking earlier than the registry wants would not help.
     */
    long waitBefore(int n, IOException e, long deadlineNanos) {
        long left = deadlineNanos - clock.getAsLong();
        if (left <= 0) return -1;
        long ceiling = Math.min(capNanos, baseNanos << Math.min(n - 1, 30));
        long wait = (long) (random.getAsDouble() * ceiling);
        Optional<Duration> after = e instanceof RegistryException r ? r.retryAfter() : Optional.empty();
        if (after.isPresent()) {
            if (after.get().toNanos() >= left) return -1;
            wait = Math.max(wait, after.get().toNanos());
        }
        return Math.min(wait, left);
    }

    /** Whether another attempt may succeed where e failed. */
    public static boolean retryable(Throwable e) {
        if (e instanceof RegistryException r) return r.status() >= 500 || r.status() == 429 || r.status() == 408;
        return e instanceof TransportException;
    }
}
