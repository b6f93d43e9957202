package org.dedupsnapshotter.cli.connect;

import io.netty.util.internal.logging.InternalLoggerFactory;
import io.netty.util.internal.logging.JdkLoggerFactory;

import java.util.logging.Level;
import java.util.logging.Logger;

/**
 * netty's log in dedupctl: java.util.logging, where gRPC's goes. Left to itself netty logs through slf4j when it finds
 * it, and the class path dedupctl shares with the daemon has logback, whose start-up (the daemon's LogSetup found as
 * its Configurator, appenders, patterns) cost every command that opens a channel ~15 ms, for messages a one-shot
 * client never has.
 */
public final class NettyLogging {
    // held: java.util.logging keeps a logger, and the level set on it, only while something refers to it
    private static final Logger NETTY = Logger.getLogger("io.netty");
    private static final Logger BOOTSTRAP = Logger.getLogger("io.netty.bootstrap");

    static {
        InternalLoggerFactory.setDefaultFactory(JdkLoggerFactory.INSTANCE);
        // the daemon's levels (LogSetup): warnings, and for bootstrap errors only, since netty warns at every
        // connection that a unix socket has no SO_KEEPALIVE
        NETTY.setLevel(Level.WARNING);
        BOOTSTRAP.setLevel(Level.SEVERE);
    }

    private NettyLogging() {}

    /** Call before the first use of netty (the static initialiser does the work, once). */
    public static void use() {}
}
