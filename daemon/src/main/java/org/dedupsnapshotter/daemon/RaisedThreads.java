package org.dedupsnapshotter.daemon;

import org.dedupsnapshotter.sys.Libc;

import io.netty.util.concurrent.DefaultThreadFactory;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.ThreadFactory;

/**
 * Netty threads at a raised priority (nice -5, as root): the transport threads read every request and answer the
 * inline ones (Mounts) themselves, while a parallel pull's decompression and our chunk hashing keep both cores
 * busy; at the default priority a wake-up waited for the scheduler for milliseconds. They do little work, so the
 * bulk work loses almost nothing to them. Without the privilege they run at normal priority. A thread inherits the
 * nice value of the thread that starts it: threads started from these (the call pool's, and through it the chunk
 * hashers') must set theirs back with {@link #normal}.
 */
final class RaisedThreads extends DefaultThreadFactory {
    private static final Logger log = LoggerFactory.getLogger(RaisedThreads.class);
    static final int NICE = -5;

    RaisedThreads(String poolName) { super(poolName, true); }

    @Override
    protected Thread newThread(Runnable r, String name) {
        return super.newThread(() -> {
            nice(NICE);
            r.run();
        }, name);
    }

    /** Wraps a thread factory: its threads run at normal priority whoever starts them. */
    static ThreadFactory normal(ThreadFactory f) {
        return r -> f.newThread(() -> {
            nice(0);
            r.run();
        });
    }

    /** The calling thread's nice value becomes n. */
    private static void nice(int n) {
        try {
            Libc.setpriority(threadId(), n);
        } catch (IOException | RuntimeException e) { // Errno: not root
            log.debug("thread {} stays at normal priority: {}", Thread.currentThread().getName(), e.getMessage());
        }
    }

    /** The kernel's id of the calling thread: /proc/thread-self links to PID/task/TID. */
    static long threadId() throws IOException {
        return Long.parseLong(Files.readSymbolicLink(Path.of("/proc/thread-self")).getFileName().toString());
    }
}
