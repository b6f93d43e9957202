package org.dedupsnapshotter.itest;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

/**
 * The daemon's root on a small loop-mounted ext4 that fills up during a pull: the pull fails with a clear error,
 * images already there stay intact, fsck is clean, and the failed snapshot's space comes back once removed.
 */
class DiskFullTest {
    static final int MIB = 1024 * 1024;
    static TestEnv env;
    static Path fs;

    @BeforeAll
    static void start() throws Exception {
        env = TestEnv.full(dir -> {
            Path img = dir.resolve("small.ext4");
            fs = Files.createDirectories(dir.resolve("small"));
            Proc.run(Duration.ofMinutes(1), List.of("truncate", "-s", "112M", img.toString())).orThrow("truncate");
            Proc.run(Duration.ofMinutes(1), List.of("mkfs.ext4", "-q", "-F", "-m", "0", img.toString())).orThrow("mkfs.ext4");
            Proc.run(Duration.ofMinutes(1), List.of("mount", "-o", "loop", img.toString(), fs.toString())).orThrow("mount");
            return fs.resolve("dedup");
        });
    }

    @AfterAll
    static void stop() throws Exception {
        if (env != null) env.close();
    }

    static long used() throws Exception {
        var st = Files.getFileStore(fs);
        return st.getTotalSpace() - st.getUnallocatedSpace();
    }

    static String image(String name, byte[] data) throws Exception {
        byte[] layer = new TarWriter().dir("./", TarWriter.Meta.of(0755)).file("data", data, TarWriter.Meta.of(0644)).finish();
        return OciImage.push(env.registry(), "itest/" + name, "1", List.of(Images.base().finish(), layer), List.of("/bin/sh"));
    }

    @Test
    void fullDiskFailsThePullCleanlyAndGivesSpaceBack() throws Exception {
        byte[] small = Images.random(40, 24 * MIB + 3), big = Images.random(41, 72 * MIB + 5);
        String first = image("disk-first", small), second = image("disk-big", big);
        env.ctr("images", "pull", "--plain-http", "--snapshotter", "dedup", first);
        long before = used();

        Proc.Result r = env.ctrResult("images", "pull", "--plain-http", "--snapshotter", "dedup", second);
        System.out.printf("disk full: pull exit %d; used before %d MiB%n%s%n", r.code(), before / MIB, r.out().lines().filter(l -> l.contains("space")).toList());
        assertNotEquals(0, r.code(), "the pull should have failed on a full disk");
        assertTrue(r.out().toLowerCase().contains("no space left on device"), "the error should say the disk is full:\n" + r.out());
        assertTrue(env.daemon.alive(), "the daemon died on a full disk");

        // removing the failed image makes containerd's GC remove the half-unpacked snapshot from us (an aborted
        // extraction alone does not trigger its GC)
        env.ctr("images", "rm", "--sync", second);
        // containerd drops the failed snapshot from its metadata at once and from the snapshotter in its background GC
        long after = used();
        for (int i = 0; i < 300 && after > before + 2 * MIB; i++) {
            Thread.sleep(200);
            after = used();
        }
        if (after > before + 2 * MIB) {
            System.out.println(env.dedupctl("ls").out());
            System.out.println(env.ctr("snapshots", "--snapshotter", "dedup", "ls"));
            System.out.println(Files.readString(env.containerd.log).lines().filter(l -> l.matches("(?i).*(gc|garbage|remov|snapshot).*") && !l.contains("loading plugin")).toList());
        }
        System.out.printf("disk full: used after cleanup %d MiB (before the failed pull %d MiB)%n", after / MIB, before / MIB);
        assertTrue(after <= before + 2 * MIB, "space not given back: " + (after - before) / MIB + " MiB more than before the failed pull");

        env.assertFsckClean();
        assertEquals(Images.sha256sum(small), PoolDedupTestHelper.sha256Of(env, first, "data"), "the image already there");
        // and the node keeps working: a smaller image still fits
        String fits = image("disk-fits", Images.random(42, 8 * MIB));
        env.ctr("images", "pull", "--plain-http", "--snapshotter", "dedup", fits);
        env.assertFsckClean();
    }
}
