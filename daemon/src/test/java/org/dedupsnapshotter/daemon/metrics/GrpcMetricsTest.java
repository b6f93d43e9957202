package org.dedupsnapshotter.daemon.metrics;

import io.grpc.Attributes;
import io.grpc.Metadata;
import io.grpc.MethodDescriptor;
import io.grpc.ServerCall;
import io.grpc.ServerCallHandler;
import io.grpc.Status;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import org.junit.jupiter.api.Test;

import java.io.ByteArrayInputStream;
import java.io.InputStream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;

/** The per-method meters: counts by status code and latencies, the same meters for every call of a method. */
class GrpcMetricsTest {
    private static final MethodDescriptor.Marshaller<String> TEXT = new MethodDescriptor.Marshaller<>() {
        @Override
        public InputStream stream(String value) { return new ByteArrayInputStream(value.getBytes()); }

        @Override
        public String parse(InputStream stream) { return ""; }
    };

    private static MethodDescriptor<String, String> method(String service, String name) {
        return MethodDescriptor.<String, String>newBuilder().setType(MethodDescriptor.MethodType.UNARY)
                .setFullMethodName(MethodDescriptor.generateFullMethodName(service, name)).setRequestMarshaller(TEXT).setResponseMarshaller(TEXT).build();
    }

    /** A call that only knows its method; close() is what the interceptor wraps. */
    private static final class Call extends ServerCall<String, String> {
        final MethodDescriptor<String, String> method;

        Call(MethodDescriptor<String, String> method) { this.method = method; }

        @Override public void request(int n) {}
        @Override public void sendHeaders(Metadata headers) {}
        @Override public void sendMessage(String message) {}
        @Override public void close(Status status, Metadata trailers) {}
        @Override public boolean isCancelled() { return false; }
        @Override public MethodDescriptor<String, String> getMethodDescriptor() { return method; }
        @Override public Attributes getAttributes() { return Attributes.EMPTY; }
    }

    private static void call(GrpcMetrics metrics, MethodDescriptor<String, String> m, Status status) {
        ServerCallHandler<String, String> handler = (call, headers) -> {
            call.close(status, new Metadata());
            return new ServerCall.Listener<>() {};
        };
        metrics.interceptCall(new Call(m), new Metadata(), handler);
    }

    @Test
    void countsCallsPerMethodAndCodeAndTimesThem() {
        SimpleMeterRegistry registry = new SimpleMeterRegistry();
        GrpcMetrics metrics = new GrpcMetrics(registry);
        MethodDescriptor<String, String> mounts = method("containerd.services.snapshots.v1.Snapshots", "Mounts");
        MethodDescriptor<String, String> stat = method("containerd.services.snapshots.v1.Snapshots", "Stat");
        for (int i = 0; i < 5; i++) call(metrics, mounts, Status.OK);
        call(metrics, mounts, Status.NOT_FOUND);
        call(metrics, stat, Status.NOT_FOUND);

        String svc = "containerd.services.snapshots.v1.Snapshots";
        assertEquals(5, registry.get("dedup.grpc.requests").tags("service", svc, "method", "Mounts", "code", "OK").counter().count());
        assertEquals(1, registry.get("dedup.grpc.requests").tags("service", svc, "method", "Mounts", "code", "NOT_FOUND").counter().count());
        assertEquals(1, registry.get("dedup.grpc.requests").tags("service", svc, "method", "Stat", "code", "NOT_FOUND").counter().count());
        assertNull(registry.find("dedup.grpc.requests").tags("method", "Stat", "code", "OK").counter(), "no counter for a code never returned");
        assertEquals(6, registry.get("dedup.grpc.request.duration").tags("service", svc, "method", "Mounts").timer().count());
        assertEquals(1, registry.get("dedup.grpc.request.duration").tags("service", svc, "method", "Stat").timer().count());
    }

    @Test
    void adminCallsAreCountedNotTimed() {
        SimpleMeterRegistry registry = new SimpleMeterRegistry();
        GrpcMetrics metrics = new GrpcMetrics(registry);
        call(metrics, method("dedup.admin.v1.Admin", "Stats"), Status.OK);
        assertEquals(1, registry.get("dedup.grpc.requests").tags("method", "Stats", "code", "OK").counter().count());
        assertNull(registry.find("dedup.grpc.request.duration").tags("method", "Stats").timer(), "18 series a method nobody reads");
    }
}
