package org.dedupsnapshotter.lazy.registry.hosts;

import java.io.IOException;
import java.nio.file.Path;

/** A hosts.toml (or certs.d directory) that cannot be used as it is: names the file and the key. */
public final class HostsConfigException extends IOException {
    public HostsConfigException(Path file, String key, String problem) {
        super(file + ": " + (key == null ? "" : "key \"" + key + "\" ") + problem);
    }

    public HostsConfigException(Path file, String problem, Throwable cause) {
        super(file + ": " + problem, cause);
    }
}
