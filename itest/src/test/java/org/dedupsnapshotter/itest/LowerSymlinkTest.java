package org.dedupsnapshotter.itest;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A lower layer's symlinks never lead a lazy layer's look-ups out to the host: an upper layer puts files below
 * names that are symlinks in the layer under it (x -> /root, y -> /d). containerd creates those parent directories
 * itself and copies their attributes from what the names resolve to inside the lower layer (fs.RootPath); the
 * lazily built layer must show the same, never the host's /root (0700) or any other host path.
 */
class LowerSymlinkTest {
    static TestEnv env;
    static String original, converted;

    @BeforeAll
    static void start() throws Exception {
        env = TestEnv.fullWithConfig("{\"lazy\": {\"prefetchDelay\": \"0s\"}}");
        TarWriter lower = Images.base()
                .symlink("x", "/root", TarWriter.Meta.of(0777))
                .dir("d", TarWriter.Meta.of(0710).owner(1000, 1001).xattr("user.note", "from d".getBytes(StandardCharsets.UTF_8)))
                .symlink("y", "/d", TarWriter.Meta.of(0777));
        TarWriter upper = new TarWriter()
                .file("x/sub/f", "below a link to /root\n", TarWriter.Meta.of(0644))
                .file("y/g", "below a link to /d\n", TarWriter.Meta.of(0644));
        original = OciImage.push(env.registry(), "itest/lower-links", "1", List.of(lower.finish(), upper.finish()), List.of("/bin/sh"));
        converted = Images.convert(original, env.registry() + "/itest/lower-links-lazy:1");
        env.ctr("images", "pull", "--plain-http", "--snapshotter", "overlayfs", original);
    }

    @AfterAll
    static void stop() throws Exception {
        if (env != null) env.close();
    }

    private Map<String, String> listing(String snapshotter, String ref) throws Exception {
        Path target = Files.createDirectories(env.dir.resolve("view-" + snapshotter));
        try (AutoCloseable mounted = env.mountImage(snapshotter, ref, target)) {
            return TreeListing.of(target);
        }
    }

    /** The entry without its mtime: directories containerd makes itself get the time they were made. */
    private static String attributes(Map<String, String> listing, String path) {
        String e = listing.get(path);
        if (e == null) throw new AssertionError(path + " is missing: " + listing.keySet());
        return e.replaceAll(" mtime=\\d+", "");
    }

    @Test
    void parentsBelowLowerSymlinksTakeTheLayersAttributesNotTheHosts() throws Exception {
        Pull pull = env.criPull(TestEnv.NS, converted).orThrow("pull");
        assertTrue(pull.layersDownloaded() == 0, "not pulled lazily: " + pull.out());
        Map<String, String> overlay = listing("overlayfs", original), lazy = listing("dedup", converted);
        for (String p : List.of("/x", "/x/sub", "/x/sub/f", "/y", "/y/g", "/d"))
            assertEquals(attributes(overlay, p), attributes(lazy, p), p + " differs (overlayfs vs lazy dedup)");
        assertTrue(attributes(lazy, "/y").contains("mode=0710 uid=1000 gid=1001"), "y did not take d's attributes: " + lazy.get("/y"));
        assertTrue(attributes(lazy, "/x").contains("mode=0755 uid=0 gid=0"), "x took a host path's attributes: " + lazy.get("/x"));
    }
}
