package org.dedupsnapshotter.daemon.lazypull;

import net.jqwik.api.Arbitraries;
import net.jqwik.api.Arbitrary;
import net.jqwik.api.Combinators;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.Provide;
import net.jqwik.api.Tuple;
import net.jqwik.api.statistics.Statistics;
import org.dedupsnapshotter.lazy.toc.Toc;
import org.dedupsnapshotter.lazy.toc.TocCheck;
import org.dedupsnapshotter.storage.Digest;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Base64;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Arbitrary and mutated TOCs (rewritten after conversion by whoever pushed the image): parsed, checked and built into
 * a tree the way RemoteLayers does, each is refused with an IOException or gives a tree whose files' chunks keep the
 * invariants the pool relies on — never another exception, never a hang.
 */
class TocFuzzTest {
    /** The node's chunk size here: small, so files span several chunks. */
    private static final int C = 4096;
    private static final long TOC_AT = 1L << 30;

    @Property
    void aTocIsRefusedOrGivesATreeThatKeepsTheInvariants(@ForAll("tocs") byte[] json) {
        String outcome = assertTimeoutPreemptively(Duration.ofSeconds(10), () -> {
            Toc toc;
            TocTree tree;
            try {
                toc = Toc.parse(json, 32L << 20);
                TocCheck.check(toc, C, TOC_AT);
                tree = TocTree.apply(toc, 0, 0, path -> null);
            } catch (IOException refused) {
                return "refused";
            }
            invariants(toc, tree);
            return tree.files().isEmpty() ? "accepted" : "accepted with files";
        });
        Statistics.collect(outcome);
        // the generator must reach both sides: trees to check, and refusals
        Statistics.coverage(c -> {
            c.check("accepted with files").percentage(p -> p > 2);
            c.check("refused").percentage(p -> p > 20);
        });
    }

    /** What the pool relies on, checked here independently of TocCheck. */
    private static void invariants(Toc toc, TocTree tree) {
        List<long[]> members = new ArrayList<>();
        for (TocTree.Node f : tree.files()) {
            assertEquals((f.size + C - 1) / C, f.chunks.size(), "chunks of a file of " + f.size + " bytes");
            for (int k = 0; k < f.chunks.size(); k++) {
                Toc.Chunk c = f.chunks.get(k);
                assertEquals((long) k * C, c.offset());
                assertEquals(Math.min(C, f.size - (long) k * C), c.size());
                assertTrue(c.size() >= 1 && c.size() <= C);
                if (!c.isHole()) {
                    assertNotNull(Digest.parse(c.digest()), c.digest());
                    assertTrue(c.blobLength() >= 1);
                }
                assertTrue(c.blobOffset() >= 0 && c.blobLength() <= TocCheck.maxMember(C));
                if (c.blobLength() > 0) members.add(new long[] {c.blobOffset(), c.blobOffset() + c.blobLength()});
            }
        }
        for (Toc.Prefetch p : toc.prefetch) {
            assertTrue(p.size() >= 1 && p.size() <= C && p.blobLength() >= 1);
            assertTrue(p.pieceOffset() >= 0 && p.pieceLength() >= 0 && (long) p.pieceOffset() + p.pieceLength() <= p.size());
            members.add(new long[] {p.blobOffset(), p.blobOffset() + p.blobLength()});
        }
        members.sort((a, b) -> Long.compare(a[0], b[0]));
        for (int i = 0; i < members.size(); i++) {
            assertTrue(members.get(i)[1] <= TOC_AT);
            if (i > 0) assertTrue(members.get(i - 1)[1] <= members.get(i)[0], "members overlap");
        }
        long[] usage = tree.usage();
        assertTrue(usage[0] >= 1 && usage[1] >= 0);
        tree.toErofs(C, c -> c.isHole() ? -1 : 0);
    }

    /** A path as deep as a TOC name allows (4096 characters) builds without exhausting a 512 KiB thread stack. */
    @Test
    void theDeepestPathBuildsOnASmallStack() throws Exception {
        Toc t = new Toc();
        t.chunkSize = C;
        Toc.Entry e = new Toc.Entry();
        e.name = "a/".repeat(2047) + "f";
        e.type = Toc.Entry.REG;
        t.entries.add(e);
        Toc toc = Toc.parse(t.toJson());
        Throwable[] failed = {null};
        Thread th = new Thread(null, () -> {
            try {
                TocTree tree = TocTree.apply(toc, 0, 0, path -> null);
                tree.usage();
                tree.toErofs(C, c -> 0);
                tree.files();
            } catch (Throwable x) {
                failed[0] = x;
            }
        }, "deep", 512 << 10);
        th.start();
        th.join();
        if (failed[0] != null) throw new AssertionError(failed[0]);
    }

    @Provide
    Arbitrary<byte[]> tocs() {
        Arbitrary<byte[]> made = tocObjects().map(TocFuzzTest::json);
        return Arbitraries.frequencyOf(
                Tuple.of(8, made),
                Tuple.of(4, Combinators.combine(made, edits()).as(TocFuzzTest::mutate)),
                Tuple.of(1, Arbitraries.strings().withChars("{}[]\",:0123456789-.truelfsanhkmpeizdgyobwrc ").ofMaxLength(200)
                        .map(s -> s.getBytes(StandardCharsets.UTF_8))));
    }

    private static byte[] json(Toc t) {
        try {
            return t.toJson();
        } catch (IOException e) {
            throw new IllegalStateException(e);
        }
    }

    private Arbitrary<Toc> tocObjects() {
        Arbitrary<Long> chunkSizes = Arbitraries.frequencyOf(Tuple.of(8, Arbitraries.just((long) C)),
                Tuple.of(1, Arbitraries.of(0L, -4096L, 8192L, 4095L, 1L << 31, 4L << 20)));
        return Combinators.combine(chunkSizes, entryShapes().list().ofMaxSize(8), prefetchShapes().list().ofMaxSize(3)).as((size, entries, prefetch) -> {
            Toc t = new Toc();
            t.chunkSize = size;
            long[] blob = {0};
            for (EntryShape e : entries) t.entries.add(e.build(blob));
            List<Toc.Chunk> chunks = t.entries.stream().flatMap(e -> e.chunks.stream()).filter(c -> c.digest() != null).toList();
            for (PrefetchShape p : prefetch) t.prefetch.add(p.build(chunks, blob));
            return t;
        });
    }

    /** An entry and how its chunks stray from a converter's (mutation 0: not at all). */
    private record EntryShape(String name, String type, long size, int mutation, int at, long value, String link) {
        Toc.Entry build(long[] blob) {
            Toc.Entry e = new Toc.Entry();
            e.name = name;
            e.type = type;
            e.mode = 0644;
            e.linkName = link;
            e.size = size;
            if (mutation == 9) e.xattrs.put("user.x", value % 2 == 0 ? Base64.getEncoder().encodeToString(new byte[] {1}) : "%%");
            if (!Toc.Entry.REG.equals(type) && mutation != 8) return e;
            long n = size <= 0 ? 0 : Math.min(64, (size + C - 1) / C);
            for (int k = 0; k < n; k++) {
                long off = (long) k * C;
                int len = (int) Math.min(C, size - off);
                long member = 50 + k % 7 * 20;
                String digest = k % 5 == 3 ? null : "sha256:" + String.format("%064x", (name.hashCode() & 0xffffL) << 16 | k);
                Toc.Chunk c = new Toc.Chunk(off, len, digest, blob[0], member);
                blob[0] += member;
                if (k == at % n) c = switch (mutation) {
                    case 1 -> new Toc.Chunk(off, (int) value, digest, c.blobOffset(), member);           // size
                    case 2 -> new Toc.Chunk(off + value, len, digest, c.blobOffset(), member);            // offset
                    case 3 -> new Toc.Chunk(off, len, digest, value, member);                               // member offset
                    case 4 -> new Toc.Chunk(off, len, digest, c.blobOffset(), value);                       // member length
                    case 5 -> new Toc.Chunk(off, len, value % 2 == 0 ? "sha256:XYZ" : "md5:" + value, c.blobOffset(), member);
                    case 6 -> new Toc.Chunk(off, len, digest, Math.max(0, c.blobOffset() - 10), member);  // overlaps the last
                    default -> c;
                };
                e.chunks.add(c);
                if (mutation == 7 && k == at % n) e.chunks.add(c); // twice
            }
            return e;
        }
    }

    private Arbitrary<EntryShape> entryShapes() {
        Arbitrary<String> names = Arbitraries.of("a", "a/b", "./a/c", "../../x", "/", ".", "", "a/.wh.b", ".wh.a", "a/.wh..wh..opq", "a/b/c/d", "b", "a/b/../e");
        Arbitrary<String> types = Arbitraries.frequencyOf(Tuple.of(12, Arbitraries.just(Toc.Entry.REG)),
                Tuple.of(4, Arbitraries.of(Toc.Entry.DIR, Toc.Entry.SYMLINK, Toc.Entry.HARDLINK, Toc.Entry.CHAR, Toc.Entry.FIFO, Toc.Entry.BLOCK)),
                Tuple.of(1, Arbitraries.of("sock", "", "REG")));
        Arbitrary<Long> sizes = Arbitraries.frequencyOf(Tuple.of(8, Arbitraries.of(0L, 1L, C - 1L, (long) C, C + 1L, 2L * C, 3L * C + 5, 10L * C)),
                Tuple.of(1, Arbitraries.of(-1L, Long.MIN_VALUE, Long.MAX_VALUE, 1L << 40)), Tuple.of(4, Arbitraries.longs().between(0, 20L * C)));
        Arbitrary<Long> values = Arbitraries.frequencyOf(Tuple.of(2, Arbitraries.of(0L, -1L, 1L, (long) C, C + 1L, -C * 1L, (long) Integer.MAX_VALUE,
                (long) Integer.MIN_VALUE, Long.MAX_VALUE, TOC_AT - 1)), Tuple.of(1, Arbitraries.longs().between(-10_000, 10_000)));
        Arbitrary<String> links = Arbitraries.of("a", "a/b", "", "../..", "x");
        Arbitrary<Integer> mutations = Arbitraries.frequencyOf(Tuple.of(18, Arbitraries.just(0)), Tuple.of(9, Arbitraries.integers().between(1, 9)));
        return Combinators.combine(names, types, sizes, mutations, Arbitraries.integers().between(0, 100), values,
                Arbitraries.frequencyOf(Tuple.of(9, links), Tuple.of(1, Arbitraries.just((String) null)))).as(EntryShape::new);
    }

    /** A prefetch entry: one of the TOC's chunks (or not), whole or a piece, fields as a converter writes them or strayed. */
    private record PrefetchShape(int which, int mutation, long value) {
        Toc.Prefetch build(List<Toc.Chunk> chunks, long[] blob) {
            Toc.Chunk c = chunks.isEmpty() ? new Toc.Chunk(0, 100, "sha256:" + "0".repeat(64), 0, 10) : chunks.get(which % chunks.size());
            long at = blob[0];
            blob[0] += 30;
            int piece = Math.min(c.size(), 256);
            return switch (mutation) {
                case 0 -> new Toc.Prefetch(which, c.digest(), c.size(), at, 30);
                case 1 -> new Toc.Prefetch(which, c.digest(), c.size(), at, 30, 0, piece, "sha256:" + "1".repeat(64));
                case 2 -> new Toc.Prefetch(which, c.digest(), (int) value, at, 30);
                case 3 -> new Toc.Prefetch(which, c.digest(), c.size(), at, 30, (int) value, piece, "sha256:" + "1".repeat(64));
                case 4 -> new Toc.Prefetch(which, c.digest(), c.size(), at, 30, 0, (int) value, "sha256:" + "1".repeat(64));
                case 5 -> new Toc.Prefetch(which, c.digest(), c.size(), value, 30);
                case 6 -> new Toc.Prefetch((int) value, c.digest(), c.size(), at, value);
                default -> new Toc.Prefetch(which, c.digest(), c.size(), at, 30, 0, piece, null);
            };
        }
    }

    private Arbitrary<PrefetchShape> prefetchShapes() {
        Arbitrary<Integer> mutations = Arbitraries.frequencyOf(Tuple.of(6, Arbitraries.of(0, 1)), Tuple.of(3, Arbitraries.integers().between(2, 7)));
        return Combinators.combine(Arbitraries.integers().between(0, 50), mutations,
                Arbitraries.of(0L, -1L, 1L, 255L, 4096L, 4097L, (long) Integer.MAX_VALUE, -4096L, 1L << 33)).as(PrefetchShape::new);
    }

    /** Byte edits of a TOC's JSON: [position as a per-mille of the length, kind, operand]. */
    private Arbitrary<List<int[]>> edits() {
        return Combinators.combine(Arbitraries.integers().between(0, 999), Arbitraries.integers().between(0, 4), Arbitraries.integers().between(0, 255))
                .as((at, kind, v) -> new int[] {at, kind, v}).list().ofMinSize(1).ofMaxSize(4);
    }

    private static final String[] TOKENS = {"-1", "0", "null", "\"\"", "{}", "[]", ",", "}", "]", "\"", "9999999999999999999", "1e9", "-4096", "true",
            "{\"chunks\":[{}]}", "\"sha256:" + "a".repeat(64) + "\""};

    private static byte[] mutate(byte[] json, List<int[]> edits) {
        byte[] b = json;
        for (int[] e : edits) {
            int at = (int) ((long) e[0] * b.length / 1000);
            b = switch (e[1]) {
                case 0 -> { // a byte
                    byte[] c = b.clone();
                    if (at < c.length) c[at] = (byte) e[2];
                    yield c;
                }
                case 1 -> splice(b, at, 0, TOKENS[e[2] % TOKENS.length]);                     // a token inserted
                case 2 -> splice(b, at, Math.min(b.length - at, 1 + e[2] % 12), TOKENS[e[2] % TOKENS.length]); // a span replaced
                case 3 -> Arrays.copyOf(b, at);                                               // cut
                default -> { // a number's digits changed where one starts
                    int d = at;
                    while (d < b.length && !(b[d] >= '0' && b[d] <= '9')) d++;
                    yield d < b.length ? splice(b, d, 1, e[2] % 2 == 0 ? "-" : "99999") : b;
                }
            };
        }
        return b;
    }

    private static byte[] splice(byte[] b, int at, int remove, String insert) {
        byte[] ins = insert.getBytes(StandardCharsets.UTF_8);
        byte[] out = new byte[b.length - remove + ins.length];
        System.arraycopy(b, 0, out, 0, at);
        System.arraycopy(ins, 0, out, at, ins.length);
        System.arraycopy(b, at + remove, out, at + ins.length, b.length - at - remove);
        return out;
    }
}
