package org.dedupsnapshotter.lazy.registry;

import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The retry policy on a fake clock: what it retries, how long it waits, and that it never passes the deadline. */
class RetryPolicyTest {
    static final long MS = 1_000_000;
    long now;
    final List<Long> sleeps = new ArrayList<>();
    double random = 1.0;

    RetryPolicy policy() {
        return new RetryPolicy(Duration.ofMillis(100), Duration.ofSeconds(2), () -> now, n -> {
            sleeps.add(n);
            now += n;
        }, () -> random);
    }

    static RegistryException status(int code) { return new RegistryException(code, "answered " + code); }

    @Test
    void aSuccessRunsOnceWithoutWaiting() throws IOException {
        int[] calls = {0};
        assertEquals("ok", policy().call(now + 5000 * MS, n -> {
            calls[0]++;
            return "ok";
        }));
        assertEquals(1, calls[0]);
        assertTrue(sleeps.isEmpty());
    }

    @Test
    void fiveHundredsAndResetsAreRetriedWithExponentialCappedBackoffUntilTheyPass() throws IOException {
        List<IOException> faults = new ArrayList<>(List.of(status(503), status(502), new TransportException("connection reset"), status(500),
                status(504), status(503), status(429)));
        String got = policy().call(now + 60_000 * MS, n -> {
            if (!faults.isEmpty()) throw faults.removeFirst();
            return "bytes";
        });
        assertEquals("bytes", got);
        // random 1.0 is the top of each jittered range: 100, 200, 400, 800, 1600, then the 2 s cap
        assertEquals(List.of(100 * MS, 200 * MS, 400 * MS, 800 * MS, 1600 * MS, 2000 * MS, 2000 * MS), sleeps);
    }

    @Test
    void theJitterIsFullFromZeroToTheCeiling() throws IOException {
        random = 0.25;
        int[] left = {3};
        policy().call(now + 60_000 * MS, n -> {
            if (left[0]-- > 0) throw status(503);
            return null;
        });
        assertEquals(List.of(25 * MS, 50 * MS, 100 * MS), sleeps);
    }

    @Test
    void otherClientErrorsAndWrongBytesAreNeverRetried() {
        for (IOException e : List.of(status(404), status(401), status(403), status(400), new IOException("the registry sent content with digest x"))) {
            int[] calls = {0};
            IOException thrown = assertThrows(IOException.class, () -> policy().call(now + 60_000 * MS, n -> {
                calls[0]++;
                throw e;
            }));
            assertSame(e, thrown);
            assertEquals(1, calls[0], e.getMessage());
        }
        assertTrue(sleeps.isEmpty());
    }

    @Test
    void noAttemptStartsAfterTheDeadlineAndTheLastFailureIsThrownThere() {
        long deadline = now + 1000 * MS;
        List<Long> starts = new ArrayList<>();
        IOException thrown = assertThrows(IOException.class, () -> policy().call(deadline, n -> {
            starts.add(now);
            now += 150 * MS; // each attempt itself takes time
            throw new TransportException("refused " + n);
        }));
        assertTrue(starts.stream().allMatch(t -> t <= deadline), starts.toString());
        assertEquals(deadline, now, "the call did not end at the deadline");
        assertEquals("refused " + (starts.size() - 1), thrown.getMessage());
        assertTrue(starts.size() >= 3, starts.toString());
    }

    @Test
    void retryAfterIsHonouredWhenItFitsBeforeTheDeadline() throws IOException {
        int[] calls = {0};
        policy().call(now + 5000 * MS, n -> {
            if (calls[0]++ == 0) throw new RegistryException(429, "slow down", Duration.ofSeconds(3));
            return null;
        });
        assertEquals(List.of(3000 * MS), sleeps);
    }

    @Test
    void aRetryAfterOfZeroStillBacksOff() throws IOException {
        int[] calls = {0};
        policy().call(now + 5000 * MS, n -> {
            if (calls[0]++ < 2) throw new RegistryException(503, "busy", Duration.ZERO);
            return null;
        });
        assertEquals(List.of(100 * MS, 200 * MS), sleeps);
    }

    @Test
    void aRetryAfterPastTheDeadlineFailsAtOnceRatherThanAskingEarlier() {
        int[] calls = {0};
        assertThrows(RegistryException.class, () -> policy().call(now + 2000 * MS, n -> {
            calls[0]++;
            throw new RegistryException(429, "slow down", Duration.ofSeconds(30));
        }));
        assertEquals(1, calls[0]);
        assertTrue(sleeps.isEmpty());
    }

    @Test
    void retryAfterReadsSecondsAndHttpDates() {
        Instant now = Instant.parse("2026-01-01T00:00:00Z");
        assertEquals(Duration.ofSeconds(2), RegistryException.parseRetryAfter("2", now));
        assertEquals(Duration.ofSeconds(90), RegistryException.parseRetryAfter("Thu, 01 Jan 2026 00:01:30 GMT", now));
        assertEquals(Duration.ZERO, RegistryException.parseRetryAfter("Wed, 31 Dec 2025 23:00:00 GMT", now));
        assertNull(RegistryException.parseRetryAfter("soon", now));
        assertNull(RegistryException.parseRetryAfter(null, now));
    }

    @Test
    void whatIsRetryable() {
        assertTrue(RetryPolicy.retryable(status(500)));
        assertTrue(RetryPolicy.retryable(status(503)));
        assertTrue(RetryPolicy.retryable(status(429)));
        assertTrue(RetryPolicy.retryable(new TransportException("stalled")));
        assertFalse(RetryPolicy.retryable(status(404)));
        assertFalse(RetryPolicy.retryable(status(416)));
        assertFalse(RetryPolicy.retryable(new IOException("bad digest")));
        assertFalse(RetryPolicy.retryable(new IllegalStateException()));
    }
}
