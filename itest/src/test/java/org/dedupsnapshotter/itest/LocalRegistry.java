package org.dedupsnapshotter.itest;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * A docker-registry of a test's own, beside a TestEnv's: a plain one, or a pull-through cache of another registry
 * ({@code proxy: remoteurl}) as a node's mirror. Its storage and log live in dir; kill9 stops it as a crash would,
 * start brings it back on the same port with the same storage.
 */
final class LocalRegistry implements AutoCloseable {
    final Path dir;
    final int port;
    private final String remoteUrl;
    private Proc proc;

    private LocalRegistry(Path dir, String remoteUrl) throws IOException {
        this.dir = Files.createDirectories(dir);
        this.port = TestEnv.freePort();
        this.remoteUrl = remoteUrl;
    }

    static LocalRegistry plain(Path dir) throws Exception {
        LocalRegistry r = new LocalRegistry(dir, null);
        r.start();
        return r;
    }

    /** A pull-through cache of upstream (docker-registry 2.8 pings it at start: it must be up). */
    static LocalRegistry pullThrough(Path dir, LocalRegistry upstream) throws Exception {
        LocalRegistry r = new LocalRegistry(dir, "http://" + upstream.address());
        r.start();
        return r;
    }

    String address() { return "127.0.0.1:" + port; }

    RegistryLog log() { return new RegistryLog(dir.resolve("registry.log")); }

    long pid() { return proc.pid(); }

    void start() throws Exception {
        proc = DockerRegistry.start("docker-registry", dir.resolve("registry.yml"), dir.resolve("registry.log"), port,
                DockerRegistry.config(dir.resolve("storage"), port, remoteUrl == null ? "" : """
                        proxy:
                          remoteurl: %s
                        """.formatted(remoteUrl)));
    }

    /** Stops it as a crash would (SIGKILL to its pid). */
    void kill9() throws InterruptedException { proc.kill9(); }

    boolean alive() { return proc != null && proc.alive(); }

    @Override
    public void close() throws InterruptedException {
        if (proc != null) proc.close();
    }
}
