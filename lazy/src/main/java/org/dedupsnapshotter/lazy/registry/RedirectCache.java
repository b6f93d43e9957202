package org.dedupsnapshotter.lazy.registry;

import java.io.FilterInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.InterruptedIOException;
import java.net.URI;
import java.net.URLDecoder;
import java.nio.charset.StandardCharsets;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.time.LocalDate;
import java.time.LocalDateTime;
import java.time.OffsetDateTime;
import java.time.ZoneOffset;
import java.time.format.DateTimeFormatter;
import java.time.format.DateTimeParseException;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;

/**
 * Where a registry's blob GETs were redirected (blob storage or a CDN, often a signed URL), so that a blob's later
 * Range requests go there directly: one request per chunk instead of registry GET + redirect + storage GET. Keyed by
 * the registry's blob URL (its host, repository and digest). An entry lives until the expiry its URL carries
 * (S3's X-Amz-Date + X-Amz-Expires, GCS's X-Goog-Date + X-Goog-Expires, CloudFront's and GCS's Expires=epoch
 * seconds, Azure SAS's se=), a little before it, or for {@link #DEFAULT_LIFE} when the URL says nothing; the caller
 * forgets it when it fails. At most {@link #MAX_ENTRIES} entries, the least recently used dropped first.
 */
final class RedirectCache {
    static final Duration DEFAULT_LIFE = Duration.ofMinutes(5);
    static final int MAX_ENTRIES = 4096;
    /** Given up this long before a URL's stated expiry (a tenth of its life when that is shorter): a request may take time. */
    private static final Duration MARGIN = Duration.ofSeconds(5);
    private static final DateTimeFormatter BASIC_UTC = DateTimeFormatter.ofPattern("yyyyMMdd'T'HHmmss'Z'", Locale.ROOT);

    private record Target(URI target, Instant until) {}

    private final Clock clock;
    private final int maxEntries;
    private final Map<URI, Target> entries;

    RedirectCache() { this(Clock.systemUTC(), MAX_ENTRIES); }

    RedirectCache(Clock clock, int maxEntries) {
        this.clock = clock;
        this.maxEntries = maxEntries;
        this.entries = new LinkedHashMap<>(16, 0.75f, true) {
            @Override
            protected boolean removeEldestEntry(Map.Entry<URI, Target> eldest) { return size() > RedirectCache.this.maxEntries; }
        };
    }

    /** Where blob's GET was last redirected, if that is still usable; null otherwise. */
    synchronized URI lookup(URI blob) {
        Target e = entries.get(blob);
        if (e == null) return null;
        if (!clock.instant().isBefore(e.until)) {
            entries.remove(blob);
            return null;
        }
        return e.target;
    }

    /** blob's GET was redirected to target (a URL already past its expiry is not kept). */
    synchronized void remember(URI blob, URI target) {
        Instant now = clock.instant();
        Instant until = usableUntil(target, now);
        if (until.isAfter(now)) entries.put(blob, new Target(target, until));
        else entries.remove(blob);
    }

    /** target failed for blob: the next request asks the registry again (unless another target was remembered since). */
    synchronized void forget(URI blob, URI target) {
        Target e = entries.get(blob);
        if (e != null && e.target.equals(target)) entries.remove(blob);
    }

    synchronized int size() { return entries.size(); }

    /** body (read from target), which forgets target when a read fails: a link cut mid-body is retried through the registry. */
    InputStream forgettingOnFailure(InputStream body, URI blob, URI target) {
        return new FilterInputStream(body) {
            @Override
            public int read() throws IOException {
                try {
                    return in.read();
                } catch (IOException e) {
                    failed(e);
                    throw e;
                }
            }

            @Override
            public int read(byte[] b, int off, int len) throws IOException {
                try {
                    return in.read(b, off, len);
                } catch (IOException e) {
                    failed(e);
                    throw e;
                }
            }

            @Override
            public long skip(long n) throws IOException {
                try {
                    return in.skip(n);
                } catch (IOException e) {
                    failed(e);
                    throw e;
                }
            }

            private void failed(IOException e) {
                if (!(e instanceof InterruptedIOException)) forget(blob, target);
            }
        };
    }

    /** Until when target may be used: its stated expiry less a margin, or DEFAULT_LIFE from now. */
    static Instant usableUntil(URI target, Instant now) {
        Instant expiry = statedExpiry(target);
        if (expiry == null) return now.plus(DEFAULT_LIFE);
        Duration life = Duration.between(now, expiry);
        if (life.isNegative()) return now;
        Duration margin = life.dividedBy(10).compareTo(MARGIN) < 0 ? life.dividedBy(10) : MARGIN;
        return expiry.minus(margin);
    }

    /** The expiry a signed URL states in its query, or null (none, or one this does not understand). */
    static Instant statedExpiry(URI target) {
        Map<String, String> q = query(target);
        try {
            Instant s3 = dateplus(q.get("x-amz-date"), q.get("x-amz-expires"));
            if (s3 != null) return s3;
            Instant gcs = dateplus(q.get("x-goog-date"), q.get("x-goog-expires"));
            if (gcs != null) return gcs;
            String expires = q.get("expires");
            if (expires != null && expires.matches("\\d{1,12}")) return Instant.ofEpochSecond(Long.parseLong(expires));
            String se = q.get("se");
            if (se != null) return azureTime(se);
        } catch (DateTimeParseException | NumberFormatException | ArithmeticException e) {
            return null; // a parameter of that name that means something else: the default life
        }
        return null;
    }

    /** A signing time (20260101T000000Z) plus a life in seconds, or null when either is missing. */
    private static Instant dateplus(String date, String seconds) {
        if (date == null || seconds == null || !seconds.matches("\\d{1,9}")) return null;
        return LocalDateTime.parse(date, BASIC_UTC).toInstant(ZoneOffset.UTC).plusSeconds(Long.parseLong(seconds));
    }

    /** An Azure SAS time: ISO 8601 with a zone (2026-01-01T00:00:00Z), or a date alone (its midnight, UTC). */
    private static Instant azureTime(String s) {
        if (s.length() == 10) return LocalDate.parse(s).atStartOfDay().toInstant(ZoneOffset.UTC);
        return OffsetDateTime.parse(s).toInstant();
    }

    /** The query's parameters, names lower-cased, values decoded (the first of a repeated name). */
    private static Map<String, String> query(URI u) {
        Map<String, String> out = new HashMap<>();
        String raw = u.getRawQuery();
        if (raw == null) return out;
        for (String p : raw.split("&")) {
            int eq = p.indexOf('=');
            if (eq <= 0) continue;
            String name = URLDecoder.decode(p.substring(0, eq), StandardCharsets.UTF_8).toLowerCase(Locale.ROOT);
            out.putIfAbsent(name, URLDecoder.decode(p.substring(eq + 1), StandardCharsets.UTF_8));
        }
        return out;
    }
}
