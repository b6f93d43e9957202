package org.dedupsnapshotter.itest;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

/**
 * The service manager's end of sd_notify, as systemd holds it: a unix datagram socket bound to a path, handed to
 * the daemon as NOTIFY_SOCKET. There is no systemd as PID 1 on the test machines, so the test plays its part; the
 * JDK's channels have no unix datagrams, hence FFM (written here, independently of the daemon's sender).
 */
final class NotifySocket implements AutoCloseable {
    private static final Linker L = Linker.nativeLinker();
    private static final MethodHandle SOCKET = fn("socket", FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT));
    private static final MethodHandle BIND = fn("bind", FunctionDescriptor.of(JAVA_INT, JAVA_INT, ADDRESS, JAVA_INT));
    private static final MethodHandle POLL = fn("poll", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_LONG, JAVA_INT));
    private static final MethodHandle RECV = fn("recv", FunctionDescriptor.of(JAVA_LONG, JAVA_INT, ADDRESS, JAVA_LONG, JAVA_INT));
    private static final MethodHandle CLOSE = fn("close", FunctionDescriptor.of(JAVA_INT, JAVA_INT));

    final Path path;
    private final int fd;

    private static MethodHandle fn(String name, FunctionDescriptor d) {
        return L.downcallHandle(L.defaultLookup().find(name).orElseThrow(), d);
    }

    NotifySocket(Path path) throws IOException {
        this.path = path;
        Files.deleteIfExists(path);
        try (Arena a = Arena.ofConfined()) {
            fd = (int) SOCKET.invokeExact(1 /* AF_UNIX */, 2 /* SOCK_DGRAM */ | 02000000 /* SOCK_CLOEXEC */, 0);
            if (fd < 0) throw new IOException("socket(AF_UNIX, SOCK_DGRAM) failed");
            byte[] p = path.toString().getBytes(StandardCharsets.UTF_8);
            MemorySegment addr = a.allocate(110);
            addr.set(ValueLayout.JAVA_SHORT, 0, (short) 1);
            MemorySegment.copy(p, 0, addr, ValueLayout.JAVA_BYTE, 2, p.length);
            if ((int) BIND.invokeExact(fd, addr, 2 + p.length + 1) != 0) throw new IOException("bind " + path + " failed");
        } catch (IOException e) {
            throw e;
        } catch (Throwable t) {
            throw new IOException(t);
        }
    }

    /** The next datagram, or null if none arrives within the timeout. */
    String receive(Duration timeout) throws IOException {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment pfd = a.allocate(8);
            pfd.set(JAVA_INT, 0, fd);
            pfd.set(ValueLayout.JAVA_SHORT, 4, (short) 1 /* POLLIN */);
            int ready = (int) POLL.invokeExact(pfd, 1L, (int) timeout.toMillis());
            if (ready == 0) return null;
            if (ready < 0) throw new IOException("poll failed");
            MemorySegment buf = a.allocate(4096);
            long n = (long) RECV.invokeExact(fd, buf, 4096L, 0);
            if (n < 0) throw new IOException("recv failed");
            return new String(buf.asSlice(0, n).toArray(ValueLayout.JAVA_BYTE), StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw e;
        } catch (Throwable t) {
            throw new IOException(t);
        }
    }

    @Override
    public void close() throws IOException {
        try {
            int ignored = (int) CLOSE.invokeExact(fd);
        } catch (Throwable t) {
            throw new IOException(t);
        }
        Files.deleteIfExists(path);
    }
}
