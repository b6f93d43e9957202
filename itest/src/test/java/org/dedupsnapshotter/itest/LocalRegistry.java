package org.dedupsnapshotter.itest;

import java.io.IOException;
import java.net.Socket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;

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
        Path cfg = dir.resolve("registry.yml");
        Files.writeString(cfg, """
                version: 0.1
                log:
                  level: info
                  accesslog:
                    disabled: true
                storage:
                  filesystem:
                    rootdirectory: %s
                  delete:
                    enabled: true
                http:
                  addr: 127.0.0.1:%d
                """.formatted(dir.resolve("storage"), port) + (remoteUrl == null ? "" : """
                proxy:
                  remoteurl: %s
                """.formatted(remoteUrl)));
        proc = Proc.start("docker-registry", dir.resolve("registry.log"), List.of("docker-registry", "serve", cfg.toString()));
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
        while (true) {
            try (var s = new Socket("127.0.0.1", port)) {
                return;
            } catch (IOException e) {
                if (!proc.alive() || System.nanoTime() > deadline)
                    throw new IllegalStateException("docker-registry did not start:\n" + proc.logTail());
                Thread.sleep(100);
            }
        }
    }

    /** Stops it as a crash would (SIGKILL to its pid). */
    void kill9() throws InterruptedException { proc.kill9(); }

    boolean alive() { return proc != null && proc.alive(); }

    @Override
    public void close() throws InterruptedException {
        if (proc != null) proc.close();
    }
}
