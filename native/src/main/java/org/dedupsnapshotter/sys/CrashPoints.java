package org.dedupsnapshotter.sys;

/**
 * Named points where crash tests kill the daemon with SIGKILL, exactly as kill -9 would: no shutdown hooks, no
 * flushing. Armed only by the environment variable DEDUP_CRASH_AT=NAME (or NAME:N for the Nth time the point
 * is reached); without it every call is a cheap no-op. The names are listed in docs/architecture.md.
 */
public final class CrashPoints {
    private static final String ARMED = System.getenv("DEDUP_CRASH_AT");
    private static final String NAME;
    private static final int NTH;
    private static int hits;

    static {
        if (ARMED == null || ARMED.isEmpty()) {
            NAME = null;
            NTH = 0;
        } else {
            int colon = ARMED.indexOf(':');
            NAME = colon < 0 ? ARMED : ARMED.substring(0, colon);
            NTH = colon < 0 ? 1 : Integer.parseInt(ARMED.substring(colon + 1));
        }
    }

    private CrashPoints() {}

    public static void reach(String name) {
        if (NAME == null || !NAME.equals(name)) return;
        synchronized (CrashPoints.class) {
            if (++hits < NTH) return;
        }
        System.out.println("crash point " + name + " reached: killing the daemon with SIGKILL");
        System.out.flush();
        Libc.kill(Libc.getpid(), 9);
    }
}
