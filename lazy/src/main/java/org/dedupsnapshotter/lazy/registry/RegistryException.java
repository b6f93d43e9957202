package org.dedupsnapshotter.lazy.registry;

import java.io.IOException;
import java.time.Duration;
import java.time.Instant;
import java.time.ZonedDateTime;
import java.time.format.DateTimeFormatter;
import java.time.format.DateTimeParseException;
import java.util.Optional;

/** A registry answered with an error: its status and what it said, so messages name the cause. */
public final class RegistryException extends IOException {
    private final int status;
    private final Duration retryAfter;

    public RegistryException(int status, String message) { this(status, message, null); }

    /** retryAfter: how long the registry asked us to wait before asking again (its Retry-After), or null. */
    public RegistryException(int status, String message, Duration retryAfter) {
        super(message);
        this.status = status;
        this.retryAfter = retryAfter;
    }

    public int status() { return status; }

    public boolean notFound() { return status == 404; }

    public Optional<Duration> retryAfter() { return Optional.ofNullable(retryAfter); }

    /** A Retry-After header's value (seconds, or an HTTP date) as a wait from now; null if absent or unreadable. */
    static Duration parseRetryAfter(String value, Instant now) {
        if (value == null || value.isBlank()) return null;
        String v = value.strip();
        try {
            long seconds = Long.parseLong(v);
            return seconds < 0 ? null : Duration.ofSeconds(seconds);
        } catch (NumberFormatException notSeconds) {
            try {
                Duration d = Duration.between(now, ZonedDateTime.parse(v, DateTimeFormatter.RFC_1123_DATE_TIME).toInstant());
                return d.isNegative() ? Duration.ZERO : d;
            } catch (DateTimeParseException unreadable) {
                return null;
            }
        }
    }
}
