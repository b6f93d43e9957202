package org.dedupsnapshotter.sys;

import java.io.IOException;

/** A failed system call: names the call, its argument and the errno text, so errors say what went wrong. */
public final class Errno extends IOException {
    public static final int EPERM = 1, ENOENT = 2, EINTR = 4, EIO = 5, EBADF = 9, EAGAIN = 11, EACCES = 13,
            EBUSY = 16, EEXIST = 17, ENOTDIR = 20, EINVAL = 22, ENOSPC = 28, ENOTBLK = 15, ENODATA = 61,
            EOPNOTSUPP = 95, ENOSYS = 38;
    private final int errno;

    public Errno(String call, String what, int errno) {
        super(call + "(" + what + "): " + Libc.strerror(errno) + " (errno " + errno + ")");
        this.errno = errno;
    }

    public int errno() { return errno; }
}
