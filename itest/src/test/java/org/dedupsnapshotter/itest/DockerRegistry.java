package org.dedupsnapshotter.itest;

import java.io.IOException;
import java.net.Socket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;

/** docker-registry 2.8 (Debian's) as the tests run it: a config of the test's making, started, waited for. */
final class DockerRegistry {
    private DockerRegistry() {}

    /**
     * What every test registry shares: storage under storage (deletes allowed), plain HTTP on 127.0.0.1:port, log
     * level info without the access log (RegistryLog reads the one line per request of the app log), then more:
     * lines that go on under {@code http:} (indented two spaces: tls) followed by top-level sections (auth, proxy).
     */
    static String config(Path storage, int port, String more) {
        return """
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
                """.formatted(storage, port) + more;
    }

    /** Writes config to yml and starts docker-registry on it (logging to log); returns once port accepts connections. */
    static Proc start(String label, Path yml, Path log, int port, String config) throws Exception {
        Files.writeString(yml, config);
        Proc p = Proc.start(label, log, List.of("docker-registry", "serve", yml.toString()));
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
        while (true) {
            try (var s = new Socket("127.0.0.1", port)) {
                return p;
            } catch (IOException e) {
                if (!p.alive() || System.nanoTime() > deadline) {
                    p.close();
                    throw new IllegalStateException(label + " did not start:\n" + p.logTail());
                }
                Thread.sleep(100);
            }
        }
    }
}
