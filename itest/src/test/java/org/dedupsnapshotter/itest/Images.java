package org.dedupsnapshotter.itest;

import java.io.ByteArrayInputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.time.Duration;
import java.util.HexFormat;
import java.util.List;
import java.util.Random;
import java.util.zip.GZIPInputStream;

import static org.dedupsnapshotter.itest.TarWriter.Meta;
import static org.dedupsnapshotter.itest.TarWriter.T0;

/**
 * Layers used by the tests (a base with a static busybox, and a fidelity image exercising all a layer can hold), and
 * what the tests do with images and their contents: convert them to lazy images, check contents by SHA-256, gunzip
 * parts of a blob.
 */
final class Images {
    private Images() {}

    /** The SHA-256 of b in hex, as sha256sum prints it. */
    static String sha256sum(byte[] b) throws Exception {
        return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(b));
    }

    /** dedupctl convert: src (plain HTTP registry) becomes a lazy image pushed as dst; returns dst. */
    static String convert(String src, String dst) throws Exception {
        Proc.run(Duration.ofMinutes(5), List.of(TestEnv.TOP.resolve("bin/dedupctl").toString(), "convert", "--plain-http", src, dst)).orThrow("convert");
        return dst;
    }

    /** A gzip member (a lazy layer's TOC or chunk, read from its blob by range), uncompressed. */
    static byte[] gunzip(byte[] b) throws Exception {
        try (GZIPInputStream in = new GZIPInputStream(new ByteArrayInputStream(b))) {
            return in.readAllBytes();
        }
    }

    static byte[] random(long seed, int size) {
        byte[] b = new byte[size];
        new Random(seed).nextBytes(b);
        return b;
    }

    /** /bin/busybox (static, from Debian's busybox-static) and the applets the tests call. */
    static TarWriter base() throws Exception {
        TarWriter t = new TarWriter();
        t.dir("./", Meta.of(0755));
        t.dir("bin", Meta.of(0755));
        t.file("bin/busybox", Files.readAllBytes(Path.of("/bin/busybox")), Meta.of(0755));
        for (String applet : List.of("sh", "cat", "sha256sum", "sleep", "ls", "echo", "stat", "getfattr", "head"))
            t.symlink("bin/" + applet, "busybox", Meta.of(0777));
        return t;
    }

    /** Expected contents for checks: big file data spanning three 4 MiB chunks. */
    static final byte[] BIG = random(1, 9 * 1024 * 1024 + 123);
    static final byte[] SPARSE;
    static {
        SPARSE = new byte[6 * 1024 * 1024];
        System.arraycopy(random(2, 1024 * 1024), 0, SPARSE, 5 * 1024 * 1024, 1024 * 1024);
    }

    static final byte[] CAP_NET_BIND_SERVICE = {1, 0, 0, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};

    static List<byte[]> fidelity() throws Exception {
        TarWriter l1 = base();
        l1.dir("etc", Meta.of(0755)).file("etc/hello", "hello from layer 1\n", Meta.of(0644));
        l1.dir("data", Meta.of(0755).owner(1000, 1000))
                .file("data/big", BIG, Meta.of(0640).owner(1000, 1000))
                .file("data/sparse", SPARSE, Meta.of(0644))
                .file("data/empty", new byte[0], Meta.of(0644))
                .file("data/ns-mtime", "x", Meta.of(0644).mtime(T0 + 1));
        l1.dir("attrs", Meta.of(0755))
                .file("attrs/user", "u", Meta.of(0644).xattr("user.note", "hello".getBytes(StandardCharsets.UTF_8))
                        .xattr("user.binary", new byte[] {0, 1, 2, (byte) 0xff}))
                .file("attrs/cap", "c", Meta.of(0755).xattr("security.capability", CAP_NET_BIND_SERVICE))
                .dir("attrs/dir-with-xattr", Meta.of(0750).xattr("user.dir", "d".getBytes(StandardCharsets.UTF_8)));
        l1.dir("perms", Meta.of(0755))
                .file("perms/setuid", "s", Meta.of(04755))
                .file("perms/setgid", "g", Meta.of(02755).owner(0, 50))
                .dir("perms/sticky", Meta.of(01777))
                .file("perms/owned", "o", Meta.of(0400).owner(1234, 5678))
                .file("perms/big-ids", "i", Meta.of(0644).owner(100000, 200000));
        l1.dir("devs", Meta.of(0755))
                .chardev("devs/null", 1, 3, Meta.of(0666))
                .blockdev("devs/loop", 7, 0, Meta.of(0660).owner(0, 6))
                .fifo("devs/fifo", Meta.of(0644));
        l1.dir("links", Meta.of(0755))
                .file("links/target", "target data\n", Meta.of(0644))
                .hardlink("links/hard", "links/target")
                .symlink("links/sym", "target", Meta.of(0777))
                .symlink("links/dangling", "/nonexistent/file", Meta.of(0777))
                .symlink("links/abs", "/etc/hello", Meta.of(0777));
        l1.dir("names", Meta.of(0755))
                .file("names/" + "n".repeat(250) + ".txt", "longest mkfs.erofs 1.5 can encode", Meta.of(0644))
                .file("names/with space", "1", Meta.of(0644))
                .file("names/ünïcödé-名前", "2", Meta.of(0644))
                .file("names/-leading-dash", "3", Meta.of(0644))
                .file("names/tab\tand\nnewline", "4", Meta.of(0644))
                .file("names/quote\"'s and back\\slash", "5", Meta.of(0644));
        String deep = "deep/" + "a".repeat(60) + "/" + "b".repeat(60) + "/" + "c".repeat(60);
        l1.dir("deep", Meta.of(0755)).dir("deep/" + "a".repeat(60), Meta.of(0755))
                .dir("deep/" + "a".repeat(60) + "/" + "b".repeat(60), Meta.of(0755)).dir(deep, Meta.of(0755))
                .file(deep + "/file", "deep", Meta.of(0644));
        l1.dir("toremove", Meta.of(0755)).file("toremove/a", "a", Meta.of(0644))
                .dir("toremove/sub", Meta.of(0755)).file("toremove/sub/b", "b", Meta.of(0644));
        l1.dir("opq", Meta.of(0755)).file("opq/old1", "1", Meta.of(0644)).file("opq/old2", "2", Meta.of(0644));
        l1.file("changeme", "before\n", Meta.of(0644));

        TarWriter l2 = new TarWriter();
        l2.dir("./", Meta.of(0755)).whiteout("", "toremove")
                .dir("etc", Meta.of(0755)).whiteout("etc", "hello")
                .dir("opq", Meta.of(0711)).opaque("opq").file("opq/new", "new in layer 2\n", Meta.of(0644))
                .file("changeme", "after\n", Meta.of(0600).owner(7, 8))
                .dir("data", Meta.of(0755).owner(1000, 1000)).file("data/added", "added\n", Meta.of(0644))
                .dir("links", Meta.of(0755)).whiteout("links", "sym");

        TarWriter l3 = new TarWriter();
        l3.dir("./", Meta.of(0755))
                .dir("etc", Meta.of(0755)).file("etc/hello", "hello again from layer 3\n", Meta.of(0644))
                .dir("toremove", Meta.of(0700)).file("toremove/back", "back\n", Meta.of(0644))
                .dir("opq", Meta.of(0711)).file("opq/new2", "new in layer 3\n", Meta.of(0644));
        // a 255-byte name, Linux's maximum (mkfs.erofs 1.5 cannot encode it; our writer does)
        TarWriter l4 = new TarWriter();
        l4.dir("./", Meta.of(0755)).dir("names", Meta.of(0755)).file("names/" + "m".repeat(251) + ".txt", "255", Meta.of(0644));
        return List.of(l1.finish(), l2.finish(), l3.finish(), l4.finish());
    }
}
