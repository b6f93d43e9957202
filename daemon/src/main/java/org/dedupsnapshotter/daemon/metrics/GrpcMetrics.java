package org.dedupsnapshotter.daemon.metrics;

import io.grpc.ForwardingServerCall;
import io.grpc.Metadata;
import io.grpc.MethodDescriptor;
import io.grpc.ServerCall;
import io.grpc.ServerCallHandler;
import io.grpc.ServerInterceptor;
import io.grpc.Status;
import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.Timer;

import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ConcurrentMap;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReferenceArray;

/**
 * Per-method request counts by status code and latency histograms for every gRPC call:
 * dedup_grpc_requests_total{service,method,code} and dedup_grpc_request_duration_seconds{service,method}, the latter for
 * containerd's services only: dedupctl's calls to the admin service are counted, their latency is nobody's objective
 * and would cost 18 series a method (decision 48).
 * The meters of a method are looked up once and kept: a registry look-up per call (tags, ids, the method name cut
 * out of the full name) was garbage on the Mounts path, which runs thousands of times a second under probes.
 */
public final class GrpcMetrics implements ServerInterceptor {
    private final MeterRegistry registry;
    private final ConcurrentMap<String, Meters> byMethod = new ConcurrentHashMap<>();

    public GrpcMetrics(MeterRegistry registry) { this.registry = registry; }

    /** The meters of one method: its latency timer and one request counter per status code, made on first use. */
    private final class Meters {
        final String service;
        final String method;
        final Timer duration; // null: not timed
        final AtomicReferenceArray<Counter> byCode = new AtomicReferenceArray<>(Status.Code.values().length);

        Meters(MethodDescriptor<?, ?> d) {
            service = d.getServiceName();
            method = d.getBareMethodName();
            duration = !service.startsWith("containerd.") ? null : Buckets.latency(Timer.builder("dedup.grpc.request.duration").description("gRPC request latency").tags("service", service, "method", method))
                    .register(registry);
        }

        Counter requests(Status.Code code) {
            Counter c = byCode.get(code.ordinal());
            if (c == null) {
                // the registry returns the one counter of these tags, also to two racing first calls
                c = Counter.builder("dedup.grpc.requests").description("gRPC requests by method and status code")
                        .tags("service", service, "method", method, "code", code.name()).register(registry);
                byCode.set(code.ordinal(), c);
            }
            return c;
        }
    }

    @Override
    public <Q, R> ServerCall.Listener<Q> interceptCall(ServerCall<Q, R> call, Metadata headers, ServerCallHandler<Q, R> next) {
        MethodDescriptor<Q, R> d = call.getMethodDescriptor();
        Meters meters = byMethod.get(d.getFullMethodName());
        if (meters == null) meters = byMethod.computeIfAbsent(d.getFullMethodName(), k -> new Meters(d));
        Meters m = meters;
        long start = System.nanoTime();
        return next.startCall(new ForwardingServerCall.SimpleForwardingServerCall<>(call) {
            @Override
            public void close(Status status, Metadata trailers) {
                if (m.duration != null) m.duration.record(System.nanoTime() - start, TimeUnit.NANOSECONDS);
                m.requests(status.getCode()).increment();
                super.close(status, trailers);
            }
        }, headers);
    }
}
