package org.dedupsnapshotter.lazy.registry;

import java.util.concurrent.atomic.AtomicLong;

/**
 * Failed registry requests of this process, by kind, and the retries they led to: the daemon publishes them
 * (dedup_registry_errors_total{class}, dedup_registry_retries_total). Process-wide, as a registry's health is.
 */
public final class RegistryErrors {
    /** An HTTP status of 4xx, of 5xx (or another non-2xx), or no HTTP answer at all (connection, TLS, timeout). */
    public enum Kind { CLIENT("4xx"), SERVER("5xx"), TRANSPORT("transport");
        public final String label;

        Kind(String label) { this.label = label; }
    }

    private static final AtomicLong[] ERRORS = {new AtomicLong(), new AtomicLong(), new AtomicLong()};
    private static final AtomicLong RETRIES = new AtomicLong();

    private RegistryErrors() {}

    /** Counts a failed attempt; failures that are neither registry answers nor transport failures are not counted. */
    static void failed(Throwable e) {
        if (e instanceof RegistryException r) ERRORS[(r.status() >= 400 && r.status() < 500 ? Kind.CLIENT : Kind.SERVER).ordinal()].incrementAndGet();
        else if (e instanceof TransportException) ERRORS[Kind.TRANSPORT.ordinal()].incrementAndGet();
    }

    static void retried() { RETRIES.incrementAndGet(); }

    public static long errors(Kind k) { return ERRORS[k.ordinal()].get(); }

    public static long retries() { return RETRIES.get(); }
}
