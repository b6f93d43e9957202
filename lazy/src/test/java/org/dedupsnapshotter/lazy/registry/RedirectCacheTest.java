package org.dedupsnapshotter.lazy.registry;

import org.junit.jupiter.api.Test;

import java.net.URI;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.time.ZoneId;
import java.time.ZoneOffset;
import java.util.concurrent.atomic.AtomicReference;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;

/** Expiries of signed URLs as the common stores write them, the default life, forgetting, and the size cap. */
class RedirectCacheTest {
    static final Instant T = Instant.parse("2026-01-02T03:04:05Z");
    static final URI BLOB = URI.create("https://registry.example/v2/library/app/blobs/sha256:aa");

    /** A clock the test moves. */
    static final class TestClock extends Clock {
        final AtomicReference<Instant> now = new AtomicReference<>(T);
        @Override public ZoneOffset getZone() { return ZoneOffset.UTC; }
        @Override public Clock withZone(ZoneId zone) { return this; }
        @Override public Instant instant() { return now.get(); }
        void advance(Duration d) { now.set(now.get().plus(d)); }
    }

    @Test
    void s3SignedUrlsExpireAtTheirDatePlusExpires() {
        URI u = URI.create("https://bucket.s3.amazonaws.com/docker/registry/v2/blobs/sha256/aa/aa/data?X-Amz-Algorithm=AWS4-HMAC-SHA256"
                + "&X-Amz-Credential=AKIA%2F20260102%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20260102T030405Z&X-Amz-Expires=1200&X-Amz-Signature=ab");
        assertEquals(T.plusSeconds(1200), RedirectCache.statedExpiry(u));
    }

    @Test
    void gcsV4SignedUrlsExpireAtTheirDatePlusExpires() {
        assertEquals(T.plusSeconds(900), RedirectCache.statedExpiry(URI.create("https://storage.googleapis.com/b/o?X-Goog-Date=20260102T030405Z&X-Goog-Expires=900&X-Goog-Signature=1")));
    }

    @Test
    void cloudFrontAndGcsV2ExpiresIsEpochSeconds() {
        assertEquals(T, RedirectCache.statedExpiry(URI.create("https://d111.cloudfront.net/blob?Expires=" + T.getEpochSecond() + "&Signature=x&Key-Pair-Id=K")));
    }

    @Test
    void azureSasSeIsAnIsoTimeOrADate() {
        assertEquals(T, RedirectCache.statedExpiry(URI.create("https://acct.blob.core.windows.net/c/b?sv=2022-11-02&se=2026-01-02T03%3A04%3A05Z&sr=b&sp=r&sig=x")));
        assertEquals(Instant.parse("2026-01-02T00:00:00Z"), RedirectCache.statedExpiry(URI.create("https://acct.blob.core.windows.net/c/b?se=2026-01-02&sig=x")));
    }

    @Test
    void aUrlWithoutOrWithAnUnreadableExpiryLivesTheDefault() {
        assertNull(RedirectCache.statedExpiry(URI.create("https://cdn.example/blob")));
        assertNull(RedirectCache.statedExpiry(URI.create("https://cdn.example/blob?X-Amz-Date=yesterday&X-Amz-Expires=60&Expires=soon")));
        assertEquals(T.plus(RedirectCache.DEFAULT_LIFE), RedirectCache.usableUntil(URI.create("https://cdn.example/blob?a=b"), T));
    }

    @Test
    void aStatedExpiryIsGivenUpAMarginBefore() {
        URI longLived = URI.create("https://cdn.example/b?Expires=" + T.plusSeconds(3600).getEpochSecond());
        assertEquals(T.plusSeconds(3600 - 5), RedirectCache.usableUntil(longLived, T));
        URI shortLived = URI.create("https://cdn.example/b?Expires=" + T.plusSeconds(10).getEpochSecond());
        assertEquals(T.plusSeconds(9), RedirectCache.usableUntil(shortLived, T), "a tenth of a short life");
    }

    @Test
    void anEntryLivesUntilItsExpiryAndNoLonger() {
        TestClock clock = new TestClock();
        RedirectCache c = new RedirectCache(clock, 10);
        URI cdn = URI.create("https://cdn.example/b?X-Amz-Date=20260102T030405Z&X-Amz-Expires=100");
        c.remember(BLOB, cdn);
        clock.advance(Duration.ofSeconds(94));
        assertEquals(cdn, c.lookup(BLOB));
        clock.advance(Duration.ofSeconds(1)); // 95 s: 100 less the 5 s margin
        assertNull(c.lookup(BLOB));
        assertEquals(0, c.size());
    }

    @Test
    void anUnsignedTargetLivesTheDefaultLife() {
        TestClock clock = new TestClock();
        RedirectCache c = new RedirectCache(clock, 10);
        c.remember(BLOB, URI.create("http://cdn.example/b"));
        clock.advance(RedirectCache.DEFAULT_LIFE.minusSeconds(1));
        assertEquals(URI.create("http://cdn.example/b"), c.lookup(BLOB));
        clock.advance(Duration.ofSeconds(1));
        assertNull(c.lookup(BLOB));
    }

    @Test
    void anAlreadyExpiredTargetIsNotKept() {
        RedirectCache c = new RedirectCache(new TestClock(), 10);
        c.remember(BLOB, URI.create("https://cdn.example/b?Expires=" + T.minusSeconds(1).getEpochSecond()));
        assertNull(c.lookup(BLOB));
    }

    @Test
    void forgettingATargetKeepsANewerOne() {
        RedirectCache c = new RedirectCache(new TestClock(), 10);
        URI old = URI.create("http://cdn.example/old"), fresh = URI.create("http://cdn.example/new");
        c.remember(BLOB, fresh);
        c.forget(BLOB, old); // a late failure of the old URL
        assertEquals(fresh, c.lookup(BLOB));
        c.forget(BLOB, fresh);
        assertNull(c.lookup(BLOB));
    }

    @Test
    void theLeastRecentlyUsedGoesBeyondTheCap() {
        RedirectCache c = new RedirectCache(new TestClock(), 3);
        for (int i = 0; i < 3; i++) c.remember(URI.create(BLOB + "" + i), URI.create("http://cdn.example/" + i));
        c.lookup(URI.create(BLOB + "0")); // used: kept
        c.remember(URI.create(BLOB + "3"), URI.create("http://cdn.example/3"));
        assertEquals(3, c.size());
        assertNull(c.lookup(URI.create(BLOB + "1")));
        assertEquals(URI.create("http://cdn.example/0"), c.lookup(URI.create(BLOB + "0")));
    }
}
