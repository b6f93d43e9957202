package org.dedupsnapshotter.mount;

import org.dedupsnapshotter.sys.Errno;
import org.dedupsnapshotter.sys.Libc;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * Read-only, auto-clearing loop devices (LOOP_CONFIGURE), for kernels without file-backed EROFS mounts.
 * Auto-clear detaches the device when its last user goes, so nothing leaks: the caller keeps this open until
 * the mount holds the device (closing it earlier detaches the device at once).
 */
final class LoopDevice implements AutoCloseable {
    final String path;
    private final int fd;

    private LoopDevice(String path, int fd) {
        this.path = path;
        this.fd = fd;
    }

    @Override
    public void close() { Libc.close(fd); }

    private static final long LOOP_CTL_GET_FREE = 0x4C82, LOOP_CONFIGURE = 0x4C0A;
    private static final int LO_FLAGS_READ_ONLY = 1, LO_FLAGS_AUTOCLEAR = 4;
    private static final int LOOP_CONFIG_SIZE = 304, LO_FLAGS_OFFSET = 8 + 52;

    /** Attaches file read-only; the device lives while this is open or something (a mount) uses it. */
    static LoopDevice attach(String file) throws Errno {
        int ctl = Libc.open("/dev/loop-control", Libc.O_RDWR, 0);
        try {
            for (int attempt = 0; ; attempt++) {
                int n = Libc.ioctl(ctl, LOOP_CTL_GET_FREE, 0L);
                String dev = "/dev/loop" + n;
                int loopFd = Libc.open(dev, Libc.O_RDWR, 0);
                int fileFd = Libc.open(file, Libc.O_RDONLY, 0);
                try (Arena a = Arena.ofConfined()) {
                    MemorySegment cfg = a.allocate(LOOP_CONFIG_SIZE, 8);
                    cfg.set(ValueLayout.JAVA_INT, 0, fileFd);
                    cfg.set(ValueLayout.JAVA_INT, LO_FLAGS_OFFSET, LO_FLAGS_READ_ONLY | LO_FLAGS_AUTOCLEAR);
                    Libc.ioctl(loopFd, LOOP_CONFIGURE, cfg);
                    return new LoopDevice(dev, loopFd);
                } catch (Errno e) {
                    Libc.close(loopFd);
                    if (e.errno() != Errno.EBUSY || attempt > 20) throw e; // raced with another attacher
                } finally {
                    Libc.close(fileFd);
                }
            }
        } finally {
            Libc.close(ctl);
        }
    }
}
