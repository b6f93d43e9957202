package org.dedupsnapshotter.mount;

import org.dedupsnapshotter.sys.Errno;
import org.dedupsnapshotter.sys.Libc;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * Read-only, auto-clearing loop devices (LOOP_CONFIGURE), for kernels without file-backed EROFS mounts.
 * Auto-clear detaches the device when its last user (the mount) goes, so nothing leaks.
 */
final class LoopDevice {
    private static final long LOOP_CTL_GET_FREE = 0x4C82, LOOP_CONFIGURE = 0x4C0A;
    private static final int LO_FLAGS_READ_ONLY = 1, LO_FLAGS_AUTOCLEAR = 4;
    private static final int LOOP_CONFIG_SIZE = 304, LO_FLAGS_OFFSET = 8 + 52;

    private LoopDevice() {}

    /** Attaches file and returns the device path. The caller must mount it promptly (auto-clear on last close). */
    static String attach(String file) throws Errno {
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
                    return dev;
                } catch (Errno e) {
                    if (e.errno() != Errno.EBUSY || attempt > 20) throw e; // raced with another attacher
                } finally {
                    Libc.close(fileFd);
                    Libc.close(loopFd);
                }
            }
        } finally {
            Libc.close(ctl);
        }
    }
}
