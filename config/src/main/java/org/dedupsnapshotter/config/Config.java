package org.dedupsnapshotter.config;

import java.nio.file.Path;

/**
 * The daemon's settings. Defaults are the embedded ones; /etc/dedup-snapshotter/config.json overrides them
 * (see docs/configuration.md). Immutable.
 *
 * @param root          where metadata, layers and the chunk pool live
 * @param address       the unix socket containerd talks to
 * @param chunkSize     bytes per chunk of file data (power of two, 4 KiB .. 1 GiB)
 * @param mountBackend  how EROFS images are mounted: "auto" (file-backed when the kernel can, else loop),
 *                      "file" or "loop"
 * @param logLevel      logback level of our own loggers
 * @param poolCap       most bytes the chunk pool may hold; 0 = no cap
 */
public record Config(Path root, Path address, long chunkSize, String mountBackend, String logLevel, long poolCap) {
    public static final Path DEFAULT_PATH = Path.of("/etc/dedup-snapshotter/config.json");

    public static Config defaults() {
        return new Config(Path.of("/var/lib/dedup-snapshotter"), Path.of("/run/containerd/dedup-snapshotter.sock"),
                4L << 20, "auto", "info", 0);
    }

    public Config withRoot(Path r) { return new Config(r, address, chunkSize, mountBackend, logLevel, poolCap); }
    public Config withAddress(Path a) { return new Config(root, a, chunkSize, mountBackend, logLevel, poolCap); }
}
