package org.dedupsnapshotter.daemon;

import org.dedupsnapshotter.sys.Libc;
import org.dedupsnapshotter.sys.Stat;

import io.grpc.Metadata;
import io.grpc.ServerCall;
import io.grpc.ServerCallHandler;
import io.grpc.ServerInterceptor;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.List;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicBoolean;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The gRPC socket is 0600 from the moment anyone else could reach it, even when the daemon runs under umask 000:
 * while it starts, a watcher of the socket's directory never sees a socket there with other permissions, nor a
 * directory others could enter.
 */
class SocketServerTest {
    @TempDir
    Path dir;

    @Test
    void theSocketIsNeverReachableWithLooserPermissionsUnderUmask000() throws Exception {
        Path address = dir.resolve("dedup.sock");
        Set<String> seen = ConcurrentHashMap.newKeySet();
        AtomicBoolean stop = new AtomicBoolean();
        int old = Libc.umask(0);
        Thread watcher = Thread.ofPlatform().start(() -> {
            while (!stop.get()) {
                try (DirectoryStream<Path> ds = Files.newDirectoryStream(dir)) {
                    for (Path p : ds) {
                        Stat st = Libc.lstat(p.toString());
                        if (st.type() == Stat.S_IFSOCK && (st.mode() & 0777) != 0600 || st.isDir() && (st.mode() & 0077) != 0)
                            seen.add(p.getFileName() + " " + Integer.toOctalString(st.mode()));
                    }
                } catch (IOException | RuntimeException gone) {
                    // a name renamed or removed while we looked
                }
            }
        });
        SocketServer server;
        try {
            ServerInterceptor none = new ServerInterceptor() {
                @Override
                public <Q, R> ServerCall.Listener<Q> interceptCall(ServerCall<Q, R> call, Metadata headers,
                                                                            ServerCallHandler<Q, R> next) {
                    return next.startCall(call, headers);
                }
            };
            server = SocketServer.start(address, 4242, List.of(), none);
        } finally {
            Libc.umask(old);
            stop.set(true);
            watcher.join();
        }
        try {
            assertEquals("rw-------", PosixFilePermissions.toString(Files.getPosixFilePermissions(address, LinkOption.NOFOLLOW_LINKS)));
            assertTrue(seen.isEmpty(), "reachable with looser permissions while starting: " + seen);
            try (var left = Files.list(dir)) {
                assertEquals(List.of(address), left.toList(), "start-up left something beside the socket");
            }
        } finally {
            server.stop();
        }
    }
}
