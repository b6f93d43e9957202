package org.dedupsnapshotter.itest;

/**
 * The config.toml a TestEnv's containerd starts with: private root, state and sockets, dedup as a proxy snapshotter,
 * CRI off unless the test configures it (extra: the test's own TOML, appended).
 */
final class ContainerdConfig {
    private ContainerdConfig() {}

    /** containerd 1.6 (config version 2). */
    static String v2(TestEnv e, boolean cri, String extra) {
        String disabled = (cri ? "" : "\"io.containerd.grpc.v1.cri\", ")
                + "\"io.containerd.snapshotter.v1.btrfs\", \"io.containerd.snapshotter.v1.zfs\", \"io.containerd.snapshotter.v1.devmapper\", \"io.containerd.snapshotter.v1.aufs\"";
        return common(e, 2, disabled) + extra;
    }

    /**
     * containerd 2.x (config version 3), as the README tells users: the proxy plugin exports its root (CRI's image
     * filesystem) and enables remote-snapshot annotations (the transfer service then passes the layers' annotations
     * and CRI's labels to Prepare), and the transfer service may unpack into dedup as well as overlayfs.
     */
    static String v3(TestEnv e, boolean cri, String extra) {
        String disabled = cri ? "" : "\"io.containerd.grpc.v1.cri\", \"io.containerd.cri.v1.images\", \"io.containerd.cri.v1.runtime\"";
        return common(e, 3, disabled) + """
                    exports = { root = "%s", enable_remote_snapshot_annotations = "true" }
                [[plugins."io.containerd.transfer.v1.local".unpack_config]]
                  platform = "linux/amd64"
                  snapshotter = "overlayfs"
                [[plugins."io.containerd.transfer.v1.local".unpack_config]]
                  platform = "linux/amd64"
                  snapshotter = "dedup"
                """.formatted(e.dedupRoot) + extra;
    }

    /** What both versions say alike; ends inside [proxy_plugins.dedup], so a version may add to that table. */
    private static String common(TestEnv e, int version, String disabledPlugins) {
        return """
                version = %1$d
                root = "%2$s/containerd/root"
                state = "%2$s/containerd/state"
                disabled_plugins = [%4$s]
                [grpc]
                  address = "%2$s/containerd.sock"
                [ttrpc]
                  address = "%2$s/containerd.sock.ttrpc"
                [debug]
                  address = "%2$s/containerd-debug.sock"
                  level = "info"
                [proxy_plugins]
                  [proxy_plugins.dedup]
                    type = "snapshot"
                    address = "%3$s"
                """.formatted(version, e.dir, e.dedupSock, disabledPlugins);
    }
}
