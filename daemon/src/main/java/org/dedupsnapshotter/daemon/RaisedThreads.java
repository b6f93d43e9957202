package org.dedupsnapshotter.daemon;

import org.dedupsnapshotter.sys.Libc;

import io.netty.util.concurrent.DefaultThreadFactory;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * Netty threads at a raised priority (nice -5, as root): the transport threads read every request and answer the
 * inline ones (Mounts) themselves, while a parallel pull's decompression and our chunk hashing keep both cores
 * busy; at the default priority a wake-up waited for the scheduler for milliseconds. They do little work, so the
 * bulk work loses almost nothing to them. Without the privilege they run at normal priority.
 */
final class RaisedThreads extends DefaultThreadFactory {
    private static final Logger log = LoggerFactory.getLogger(RaisedThreads.class);
    static final int NICE = -5;

    RaisedThreads(String poolName) { super(poolName, true); }

    @Override
    protected Thread newThread(Runnable r, String name) {
        return super.newThread(() -> {
            raise();
            r.run();
        }, name);
    }

    /** The calling thread's nice value becomes NICE. */
    static void raise() {
        try {
            Libc.setpriority(threadId(), NICE);
        } catch (IOException | RuntimeException e) { // Errno: not root
            log.debug("thread {} stays at normal priority: {}", Thread.currentThread().getName(), e.getMessage());
        }
    }

    /** The kernel's id of the calling thread: /proc/thread-self links to PID/task/TID. */
    static long threadId() throws IOException {
        return Long.parseLong(Files.readSymbolicLink(Path.of("/proc/thread-self")).getFileName().toString());
    }
}
