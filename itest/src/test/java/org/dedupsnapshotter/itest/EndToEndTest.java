package org.dedupsnapshotter.itest;

import org.dedupsnapshotter.proto.snapshots.v1.ListSnapshotsRequest;

import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.*;

/**
 * containerd (2.4) + runc + a registry + our daemon, all real: an image whose layers carry everything OCI layers
 * can (whiteouts, opaque dirs, hardlinks, symlinks, devices, fifos, xattrs, capabilities, setuid, owners,
 * nanosecond mtimes, odd names) must read back exactly as containerd's own overlayfs snapshotter shows it.
 */
class EndToEndTest {
    static TestEnv env;
    static String ref;

    @BeforeAll
    static void start() throws Exception {
        env = TestEnv.full();
        ref = OciImage.push(env.registry(), "itest/fidelity", "1", Images.fidelity(), List.of("/bin/sh"));
        env.ctr("images", "pull", "--plain-http", "--snapshotter", "overlayfs", ref);
        env.ctr("images", "pull", "--plain-http", "--snapshotter", "dedup", ref);
    }

    @AfterAll
    static void stop() throws Exception {
        if (env != null) env.close();
    }

    private Map<String, String> listing(String snapshotter) throws Exception {
        env.ctr("images", "pull", "--plain-http", "--snapshotter", snapshotter, ref); // unpacked there (another test removes it)
        Path target = Files.createDirectories(env.dir.resolve("view-" + snapshotter));
        try (AutoCloseable mounted = env.mountImage(snapshotter, ref, target)) {
            return TreeListing.of(target);
        }
    }

    @Test
    void rootfsReadsBackExactlyAsOverlayfsShowsIt() throws Exception {
        Map<String, String> overlay = listing("overlayfs");
        Map<String, String> dedup = listing("dedup");
        assertTrue(overlay.size() > 50, "overlayfs listing looks empty: " + overlay.size());
        assertEquals(overlay, dedup, "differences (overlayfs vs dedup):\n" + TreeListing.diff(overlay, dedup));

        // the layers' deletions and replacements took effect (not just "equally wrong" on both sides)
        assertFalse(dedup.containsKey("/toremove/a"), "whited-out dir came back");
        assertTrue(dedup.containsKey("/toremove/back"));
        assertFalse(dedup.containsKey("/links/sym"), "whited-out symlink came back");
        assertFalse(dedup.containsKey("/opq/old1"), "opaque dir leaked lower entries");
        assertTrue(dedup.containsKey("/opq/new") && dedup.containsKey("/opq/new2"));
        assertTrue(dedup.get("/changeme").contains("mode=0600 uid=7 gid=8"), dedup.get("/changeme"));
        assertTrue(dedup.get("/attrs/cap").contains("xattr:security.capability=" + HexFormat.of().formatHex(Images.CAP_NET_BIND_SERVICE)));
        assertTrue(dedup.get("/perms/setuid").contains("mode=4755"));
        assertTrue(dedup.get("/devs/null").contains("rdev=1:3"));
        assertTrue(dedup.get("/data/ns-mtime").contains("mtime=" + (TarWriter.T0 + 1)));
        assertTrue(dedup.get("/links/hard").contains("hardlink-group=/links/hard") || dedup.get("/links/hard").contains("hardlink-group=/links/target"));
        assertTrue(dedup.get("/data/big").contains("sha256=" + Images.sha256sum(Images.BIG)));
        assertTrue(dedup.containsKey("/names/" + "m".repeat(251) + ".txt"));

        // every layer is an EROFS image, the one with the 255-byte name too (our writer encodes it; with mkfs.erofs 1.5,
        // which cannot, that layer becomes a plain directory: BuilderParityTest)
        var layers = new ObjectMapper().readTree(env.dedupctl("ls", "--json").orThrow("dedupctl ls").out());
        long erofsLayers = 0, dirLayers = 0;
        for (var l : layers) {
            if (!l.get("kind").asText().equals("committed")) continue;
            if (l.get("format").asText().equals("erofs")) erofsLayers++; else dirLayers++;
        }
        assertEquals(4, erofsLayers, "EROFS layers");
        assertEquals(0, dirLayers, "directory (fallback) layers");
    }

    @Test
    void containerRunsOnDedupAndSeesTopLayer() throws Exception {
        String out = env.ctr("run", "--rm", "--snapshotter", "dedup", ref, "e2e-run", "/bin/sh", "-c",
                "cat /etc/hello; sha256sum /data/big; ls /toremove; echo written > /tmp-file && cat /tmp-file");
        assertTrue(out.contains("hello again from layer 3"), out);
        assertTrue(out.contains(Images.sha256sum(Images.BIG)), out);
        assertTrue(out.contains("back") && !out.contains("sub"), out);
        assertTrue(out.contains("written"), out);
    }

    @Test
    void removingTheImageLeavesNoMountsAndNoSnapshotDirectories() throws Exception {
        String other = OciImage.push(env.registry(), "itest/removeme", "1", List.of(Images.base().finish(),
                new TarWriter().dir("./", TarWriter.Meta.of(0755)).file("x", "x", TarWriter.Meta.of(0644)).finish()), List.of("/bin/sh"));
        env.ctr("images", "pull", "--plain-http", "--snapshotter", "dedup", other);
        long before = countSnapshots();
        assertTrue(before >= 2, "pull made no snapshots");
        env.ctr("images", "rm", "--sync", other);
        assertEquals(before - 2, countSnapshots(), "the image's two layers were not removed");

        env.ctr("images", "rm", "--sync", ref);
        assertEquals(0, countSnapshots(), "snapshots left after removing every image");
        assertEquals(List.of(), env.layerMounts(), "layer mounts left under the daemon's root");
        try (var dirs = Files.list(env.dedupRoot.resolve("snapshots"))) {
            assertEquals(List.of(), dirs.toList(), "snapshot directories left");
        }
        // and pulling again works on the emptied store
        env.ctr("images", "pull", "--plain-http", "--snapshotter", "dedup", ref);
        assertEquals(4, countSnapshots());
    }

    private long countSnapshots() {
        long n = 0;
        var it = env.snapshots().list(ListSnapshotsRequest.newBuilder().setSnapshotter("dedup").build());
        while (it.hasNext()) n += it.next().getInfoCount();
        return n;
    }
}
