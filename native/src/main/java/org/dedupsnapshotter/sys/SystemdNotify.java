package org.dedupsnapshotter.sys;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemoryLayout;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.StructLayout;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.lang.invoke.VarHandle;
import java.nio.charset.StandardCharsets;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

/**
 * sd_notify(3) without libsystemd: one datagram to the unix socket systemd names in NOTIFY_SOCKET (a path, or an
 * abstract name after "@"). The JDK's channels speak unix-domain streams only, hence FFM. Without NOTIFY_SOCKET
 * (not started by systemd with Type=notify) it does nothing.
 */
public final class SystemdNotify {
    private static final Linker LINKER = Linker.nativeLinker();
    private static final StructLayout CALL_STATE = Linker.Option.captureStateLayout();
    private static final VarHandle ERRNO = CALL_STATE.varHandle(MemoryLayout.PathElement.groupElement("errno"));
    private static final Linker.Option CAPTURE = Linker.Option.captureCallState("errno");
    private static final int AF_UNIX = 1, SOCK_DGRAM = 2, SOCK_CLOEXEC = 02000000, MSG_NOSIGNAL = 0x4000;
    /** sizeof(struct sockaddr_un): sa_family_t, then sun_path[108]. */
    private static final int SUN_PATH = 108;
    private static final MethodHandle SOCKET = downcall("socket", FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT));
    private static final MethodHandle SENDTO = downcall("sendto", FunctionDescriptor.of(JAVA_LONG, JAVA_INT, ADDRESS, JAVA_LONG, JAVA_INT, ADDRESS, JAVA_INT));

    private SystemdNotify() {}

    private static MethodHandle downcall(String name, FunctionDescriptor fd) {
        return LINKER.downcallHandle(LINKER.defaultLookup().find(name).orElseThrow(() -> new UnsatisfiedLinkError(name)), fd, CAPTURE);
    }

    /** The socket systemd gave this process, or null. */
    public static String socket() {
        String s = System.getenv("NOTIFY_SOCKET");
        return s == null || s.isEmpty() ? null : s;
    }

    /** Sends state (e.g. "READY=1\nSTATUS=…") to NOTIFY_SOCKET; false when there is none. */
    public static boolean notify(String state) throws Errno {
        String target = socket();
        if (target == null) return false;
        send(target, state);
        return true;
    }

    /** Sends one datagram to the unix socket at path ("@name": the abstract name). */
    static void send(String path, String state) throws Errno {
        byte[] name = path.getBytes(StandardCharsets.UTF_8);
        boolean abstractName = name[0] == '@';
        if (name.length >= SUN_PATH) throw new Errno("sendto", path, Errno.EINVAL);
        try (Arena a = Arena.ofConfined()) {
            MemorySegment st = a.allocate(CALL_STATE);
            int fd = (int) SOCKET.invokeExact(st, AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
            if (fd < 0) throw new Errno("socket", "AF_UNIX, SOCK_DGRAM", (int) ERRNO.get(st, 0L));
            try {
                MemorySegment addr = a.allocate(2 + SUN_PATH);
                addr.set(ValueLayout.JAVA_SHORT, 0, (short) AF_UNIX);
                MemorySegment.copy(name, 0, addr, ValueLayout.JAVA_BYTE, 2, name.length);
                if (abstractName) addr.set(ValueLayout.JAVA_BYTE, 2, (byte) 0); // a leading NUL names the abstract socket
                // a path is NUL-terminated (the segment is zeroed); an abstract name is exactly its bytes
                int addrLen = 2 + name.length + (abstractName ? 0 : 1);
                byte[] msg = state.getBytes(StandardCharsets.UTF_8);
                MemorySegment buf = a.allocateFrom(ValueLayout.JAVA_BYTE, msg);
                long sent = (long) SENDTO.invokeExact(st, fd, buf, (long) msg.length, MSG_NOSIGNAL, addr, addrLen);
                if (sent < 0) throw new Errno("sendto", path, (int) ERRNO.get(st, 0L));
            } finally {
                Libc.close(fd);
            }
        } catch (Errno e) {
            throw e;
        } catch (Throwable t) {
            if (t instanceof RuntimeException r) throw r;
            if (t instanceof Error e) throw e;
            throw new IllegalStateException(t);
        }
    }
}
