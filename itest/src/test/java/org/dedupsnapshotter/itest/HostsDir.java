package org.dedupsnapshotter.itest;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * A hosts directory in containerd's config_path layout ({@code DIR/HOST:PORT/hosts.toml}), as both containerd
 * ({@code ctr images pull --hosts-dir}) and the daemon ({@code lazy.hostsDir}) read it.
 */
final class HostsDir {
    private HostsDir() {}

    /** Names mirror (plain HTTP, pull and resolve) in front of upstream, the registry itself as the fallback. */
    static Path withMirror(Path dir, String upstream, String mirror) throws IOException {
        Path host = Files.createDirectories(dir.resolve(upstream));
        Files.writeString(host.resolve("hosts.toml"), """
                server = "http://%s"

                [host."http://%s"]
                  capabilities = ["pull", "resolve"]
                """.formatted(upstream, mirror));
        return dir;
    }
}
