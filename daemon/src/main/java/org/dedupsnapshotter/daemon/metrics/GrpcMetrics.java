package org.dedupsnapshotter.daemon.metrics;

import io.grpc.ForwardingServerCall;
import io.grpc.Metadata;
import io.grpc.ServerCall;
import io.grpc.ServerCallHandler;
import io.grpc.ServerInterceptor;
import io.grpc.Status;
import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.Timer;

import java.util.concurrent.TimeUnit;

/**
 * Per-method request counts by status code and latency histograms for every gRPC call:
 * dedup_grpc_requests_total{service,method,code} and dedup_grpc_request_duration_seconds{service,method}.
 */
public final class GrpcMetrics implements ServerInterceptor {
    private final MeterRegistry registry;

    public GrpcMetrics(MeterRegistry registry) { this.registry = registry; }

    @Override
    public <Q, R> ServerCall.Listener<Q> interceptCall(ServerCall<Q, R> call, Metadata headers, ServerCallHandler<Q, R> next) {
        String service = call.getMethodDescriptor().getServiceName();
        String method = call.getMethodDescriptor().getBareMethodName();
        long start = System.nanoTime();
        return next.startCall(new ForwardingServerCall.SimpleForwardingServerCall<>(call) {
            @Override
            public void close(Status status, Metadata trailers) {
                Timer.builder("dedup.grpc.request.duration").description("gRPC request latency").tags("service", service, "method", method)
                        .publishPercentileHistogram().register(registry).record(System.nanoTime() - start, TimeUnit.NANOSECONDS);
                Counter.builder("dedup.grpc.requests").description("gRPC requests by method and status code")
                        .tags("service", service, "method", method, "code", status.getCode().name()).register(registry).increment();
                super.close(status, trailers);
            }
        }, headers);
    }
}
