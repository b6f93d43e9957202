package org.dedupsnapshotter.itest;

import java.nio.file.Files;
import java.nio.file.Path;

/** Reads one file of an image through a mounted view of its rootfs. */
final class PoolDedupTestHelper {
    private PoolDedupTestHelper() {}

    static String sha256Of(TestEnv env, String ref, String path) throws Exception {
        Path target = Files.createDirectories(env.dir.resolve("read-" + Math.abs((ref + path).hashCode())));
        try (AutoCloseable mounted = env.mountImage("dedup", ref, target)) {
            return TreeListing.sha256(target.resolve(path));
        }
    }
}
