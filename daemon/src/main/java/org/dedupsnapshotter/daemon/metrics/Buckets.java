package org.dedupsnapshotter.daemon.metrics;

import io.micrometer.core.instrument.Timer;

import java.time.Duration;

/**
 * The buckets of every latency histogram the daemon publishes: 14 bounds, about 2.5x apart, from 0.5 ms (a Mounts
 * call) to 60 s (a large Commit), and +Inf. Micrometer's percentile histogram gives a timer ~70 buckets; on every
 * gRPC method that was ~2,000 series a node for figures nobody reads at that resolution (docs/decisions.md 45).
 */
final class Buckets {
    static final Duration[] LATENCY = {ms(0.5), ms(1), ms(2.5), ms(5), ms(10), ms(25), ms(50), ms(100), ms(250), ms(500),
            ms(1000), ms(2500), ms(10_000), ms(60_000)};

    private Buckets() {}

    private static Duration ms(double ms) { return Duration.ofNanos((long) (ms * 1_000_000)); }

    /** A timer builder with these buckets as its histogram. */
    static Timer.Builder latency(Timer.Builder b) { return b.serviceLevelObjectives(LATENCY); }
}
