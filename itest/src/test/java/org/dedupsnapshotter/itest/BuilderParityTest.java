package org.dedupsnapshotter.itest;

import org.dedupsnapshotter.proto.snapshots.v1.*;
import org.dedupsnapshotter.sys.Libc;
import org.junit.jupiter.api.Test;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.*;

/**
 * The two ways a committed layer's EROFS image is written (config erofsBuilder): our writer (the default) and
 * mkfs.erofs. The same upper dir, full of what layers carry, is committed by a daemon of each kind; both layers,
 * mounted read-only through a view, must list exactly as the directory they came from (lstat fields, xattrs,
 * link targets, device numbers, hardlink groups, content hashes), and each daemon's fsck --verify-data is clean.
 */
class BuilderParityTest {
    @Test
    void nativeWriterAndMkfsErofsCommitTheSameTree() throws Exception {
        Path src = Files.createTempDirectory("dedup-itest-parity-src");
        try {
            fill(src);
            Map<String, String> expected = TreeListing.of(src);
            for (String builder : List.of("native", "mkfs.erofs")) {
                Map<String, String> got = commitAndList(src, builder);
                assertEquals(expected, got, builder + ": " + TreeListing.diff(expected, got));
            }
        } finally {
            Proc.run(Duration.ofMinutes(1), List.of("rm", "-rf", src.toString()));
        }
    }

    private static Map<String, String> commitAndList(Path src, String builder) throws Exception {
        TestEnv env = TestEnv.daemonOnlyWithConfig("{\"erofsBuilder\": \"" + builder + "\", \"metrics\": {\"address\": \"\"}}");
        try {
            var api = env.snapshots();
            var prepared = api.prepare(PrepareSnapshotRequest.newBuilder().setKey("a").build()).getMountsList();
            assertEquals("bind", prepared.getFirst().getType());
            // what containerd's applier leaves in an upper dir, copied with every attribute, holes kept
            Proc.run(Duration.ofMinutes(1), List.of("cp", "-a", "--sparse=always", src + "/.", prepared.getFirst().getSource() + "/")).orThrow("cp -a");
            api.commit(CommitSnapshotRequest.newBuilder().setName("L").setKey("a").build());
            String log = Files.readString(env.dir.resolve("daemon-1.log"));
            assertTrue(log.contains("builder=" + builder) || (builder.equals("mkfs.erofs") && log.contains("as a plain directory layer")),
                    "the commit went through " + builder);

            var mounts = api.view(ViewSnapshotRequest.newBuilder().setKey("v").setParent("L").build()).getMountsList();
            Path target = Files.createDirectories(env.dir.resolve("v"));
            SnapshotMounts.mount(mounts, target);
            try {
                Map<String, String> listing = TreeListing.of(target);
                env.assertFsckClean();
                return listing;
            } finally {
                Libc.umount2(target.toString(), Libc.MNT_DETACH);
            }
        } finally {
            env.close();
        }
    }

    /** Everything an OCI layer can hold, in one directory. */
    private static void fill(Path d) throws Exception {
        List<List<String>> sh = new ArrayList<>();
        String s = d.toString();
        sh.add(List.of("sh", "-c", String.join("\n",
                "set -e",
                "cd " + s,
                "chmod 0755 .",
                "printf 'small\\n' > small",
                "head -c 6291461 /dev/urandom > two-chunks",
                "head -c 4194304 /dev/urandom > exactly-one-chunk",
                ": > empty",
                // 12 MiB with a 4 MiB hole in the middle: the zero chunk stays a hole
                "head -c 1048576 /dev/urandom > sparse && truncate -s 12M sparse && printf tail >> sparse",
                "ln two-chunks hard1 && ln two-chunks hard2",
                "ln -s small sym && ln -s /absolute/target abs-sym",
                "ln -s " + "t".repeat(1500) + " long-sym",
                "mknod char-dev c 1 3 && mknod block-dev b 7 0 && mknod whiteout c 0 0 && mkfifo fifo",
                "printf x > setuid && chmod 4755 setuid && printf y > setgid && chmod 2711 setgid",
                "printf o > owned && chown 7:8 owned && chmod 0600 owned",
                "mkdir -p opaque/inner && setfattr -n trusted.overlay.opaque -v y opaque",
                "setfattr -n user.a -v 1 small && setfattr -n user.empty small",
                "setfattr -n security.capability -v 0sAQAAAgAEAAAAAAAAAAAAAAAAAAA= setuid",
                "setfattr -n user.big -v \"$(head -c 3000 /dev/zero | tr '\\0' v)\" opaque/inner",
                "mkdir many && i=0 && while [ $i -lt 400 ]; do printf $i > many/file-with-a-longish-name-$i; i=$((i+1)); done",
                "mkdir names && printf 255 > names/" + "m".repeat(251) + ".txt",
                "printf ns > ns-mtime && touch -d '2001-02-03 04:05:06.123456789' ns-mtime",
                "touch -h -d '1999-01-01 00:00:00.5' sym",
                "touch -d '2020-01-01 00:00:00.000000001' many opaque names")));
        for (List<String> c : sh) Proc.run(Duration.ofMinutes(1), c).orThrow(String.join(" ", c));
    }
}
