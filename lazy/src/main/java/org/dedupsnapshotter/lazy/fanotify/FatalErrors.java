package org.dedupsnapshotter.lazy.fanotify;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.util.function.IntConsumer;

/**
 * A VirtualMachineError (out of memory, an internal error) leaves nothing in the process to trust: the thread that
 * answers readers may be the next to fail, and a daemon that stays up but answers nobody leaves every lazy reader
 * blocked with nothing to restart it. So the daemon ends at once, with {@link #EXIT_CODE}: the fd holder keeps the
 * fanotify group and the in-flight journal the pending reads (docs/lazy-pull.md), systemd starts it again
 * (Restart=on-failure), and the next daemon answers them. Any other Throwable is the caller's to answer.
 */
public final class FatalErrors {
    private static final Logger log = LoggerFactory.getLogger(FatalErrors.class);
    /** The daemon's exit status after a VirtualMachineError (distinct from 1, a failed start-up). */
    public static final int EXIT_CODE = 86;
    /** How the process ends; tests put a recorder here. */
    static volatile IntConsumer halt = code -> Runtime.getRuntime().halt(code);

    private FatalErrors() {}

    /** Ends the process if t is a VirtualMachineError; returns otherwise. */
    public static void haltIfFatal(Throwable t, String where) {
        if (!(t instanceof VirtualMachineError)) return;
        try {
            log.error("{}: {}; the daemon ends now (exit {}) and is restarted: lazy readers are answered by the next one", where, t, EXIT_CODE);
        } catch (Throwable ignored) {
            // the log may need memory there is none of: end anyway
        }
        halt.accept(EXIT_CODE);
    }
}
