package org.dedupsnapshotter.lazy.toc;

import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.function.Consumer;
import java.util.stream.Collectors;
import java.util.stream.IntStream;

import static org.junit.jupiter.api.Assertions.assertDoesNotThrow;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Each class of claim a TOC can make falsely is refused, with a reason, before anything is reserved. */
class TocCheckTest {
    private static final int C = 4 << 20;
    private static final long TOC_AT = 100L << 20;

    /** A well-formed layer: a directory, a file of two full chunks and a short last one (the middle a hole), a small file, a traced chunk. */
    static Toc valid() {
        Toc t = new Toc();
        t.chunkSize = C;
        t.entries.add(entry("usr", Toc.Entry.DIR, 0));
        Toc.Entry big = entry("usr/big", Toc.Entry.REG, 2L * C + 10);
        big.chunks.add(new Toc.Chunk(0, C, digest(1), 1000, 5000));
        big.chunks.add(new Toc.Chunk(C, C, null, 6000, 4200));
        big.chunks.add(new Toc.Chunk(2L * C, 10, digest(2), 10_200, 40));
        t.entries.add(big);
        Toc.Entry small = entry("usr/small", Toc.Entry.REG, 100);
        small.chunks.add(new Toc.Chunk(0, 100, digest(3), 11_000, 90));
        t.entries.add(small);
        Toc.Entry link = entry("usr/link", Toc.Entry.SYMLINK, 0);
        link.linkName = "small";
        t.entries.add(link);
        t.prefetch.add(new Toc.Prefetch(0, digest(3), 100, 20_000, 90));
        t.prefetch.add(new Toc.Prefetch(1, digest(1), C, 21_000, 300, 0, 256 << 10, digest(9)));
        return t;
    }

    static Toc.Entry entry(String name, String type, long size) {
        Toc.Entry e = new Toc.Entry();
        e.name = name;
        e.type = type;
        e.mode = 0644;
        e.size = size;
        return e;
    }

    static String digest(int n) { return "sha256:" + String.format("%064x", n); }

    private static Toc roundTrip(Toc t) throws IOException { return Toc.parse(t.toJson()); }

    private static void passes(Toc t) throws IOException {
        Toc back = roundTrip(t);
        TocCheck.check(back, C, TOC_AT);
    }

    /** The mutated TOC is refused, by parse or by the node's check, with a message containing `why`. */
    private static void refused(String why, Consumer<Toc> mutation) {
        Toc t = valid();
        mutation.accept(t);
        IOException e = assertThrows(IOException.class, () -> passes(t), why);
        assertTrue(e.getMessage().contains(why), "expected \"" + why + "\" in: " + e.getMessage());
    }

    private static Toc.Entry big(Toc t) { return t.entries.get(1); }

    private static void chunk(Toc t, int k, Toc.Chunk c) { big(t).chunks.set(k, c); }

    @Test
    void aWellFormedTocPasses() throws IOException {
        passes(valid());
        Toc empty = new Toc();
        empty.chunkSize = C;
        passes(empty);
    }

    @Test
    void chunkSizesOutsideOneToChunkSizeAreRefused() {
        refused("chunk 2 is 0 bytes", t -> chunk(t, 2, new Toc.Chunk(2L * C, 0, digest(2), 10_200, 40)));
        refused("chunk 2 is -4096 bytes", t -> chunk(t, 2, new Toc.Chunk(2L * C, -4096, digest(2), 10_200, 40)));
        refused("chunk 0 is 8388608 bytes", t -> chunk(t, 0, new Toc.Chunk(0, 2 * C, digest(1), 1000, 5000)));
        refused("chunk 0 is 4194304 bytes at 0, not 1 at 0", t -> { // a file of one byte claims a 4 MiB chunk
            Toc.Entry e = entry("one", Toc.Entry.REG, 1);
            e.chunks.add(new Toc.Chunk(0, C, digest(7), 30_000, 10));
            t.entries.add(e);
        });
        refused("2 chunks for 100 bytes", t -> t.entries.get(2).chunks.add(new Toc.Chunk(100, 1, digest(7), 30_000, 10)));
    }

    @Test
    void aShortMiddleChunkIsRefused() {
        refused("chunk 1 is 4096 bytes at 4194304, not 4194304 at 4194304", t -> chunk(t, 1, new Toc.Chunk(C, 4096, null, 6000, 4200)));
    }

    @Test
    void nonContiguousOffsetsAreRefused() {
        refused("chunk 1 is 4194304 bytes at 4198400", t -> chunk(t, 1, new Toc.Chunk(C + 4096, C, null, 6000, 4200)));
        refused("chunk 0 is 4194304 bytes at -1", t -> chunk(t, 0, new Toc.Chunk(-1, C, digest(1), 1000, 5000)));
        refused("chunk 2 is 10 bytes at 8388608, not 20", t -> big(t).size = 2L * C + 20); // chunks cover less than the file
        refused("entry usr/link: a symlink with data chunks", t -> t.entries.get(3).chunks.add(new Toc.Chunk(0, 10, digest(5), 40_000, 10)));
        refused("size -5", t -> t.entries.get(3).size = -5);
    }

    @Test
    void anotherChunkSizeThanTheNodesIsRefused() throws IOException {
        Toc t = roundTrip(valid());
        IOException e = assertThrows(IOException.class, () -> TocCheck.check(t, 1 << 20, TOC_AT));
        assertTrue(e.getMessage().contains("TOC chunk size 4194304 is not this node's (1048576)"), e.getMessage());
        refused("is not a power of two", x -> x.chunkSize = 3 << 20);
        refused("is not a power of two", x -> x.chunkSize = 2L << 30);
        refused("is not a power of two", x -> x.chunkSize = -C);
    }

    @Test
    void membersOutOfRangeAreRefused() {
        refused("member -1+5000 is out of range", t -> chunk(t, 0, new Toc.Chunk(0, C, digest(1), -1, 5000)));
        refused("member 1000+0 is out of range", t -> chunk(t, 0, new Toc.Chunk(0, C, digest(1), 1000, 0)));
        refused("is out of range (at most " + TocCheck.maxMember(C), t -> chunk(t, 0, new Toc.Chunk(0, C, digest(1), 1000, TocCheck.maxMember(C) + 1)));
        refused("member 9223372036854775000+5000 is out of range", t -> chunk(t, 0, new Toc.Chunk(0, C, digest(1), 9223372036854775000L, 5000)));
        refused("is not before the TOC's at " + TOC_AT, t -> chunk(t, 0, new Toc.Chunk(0, C, digest(1), TOC_AT - 10, 11)));
        refused("prefetch entry 0: member 20000+0", t -> t.prefetch.set(0, new Toc.Prefetch(0, digest(3), 100, 20_000, 0)));
        refused("is not before the TOC's", t -> t.prefetch.set(0, new Toc.Prefetch(0, digest(3), 100, TOC_AT, 90)));
        assertDoesNotThrow(() -> { // exactly up to the TOC's member is fine
            Toc t = valid();
            chunk(t, 0, new Toc.Chunk(0, C, digest(1), TOC_AT - 10, 10));
            passes(t);
        });
    }

    @Test
    void overlappingMembersAreRefused() {
        refused("members overlap at blob offset 5999", t -> chunk(t, 1, new Toc.Chunk(C, C, null, 5999, 4200)));
        refused("members overlap at blob offset 1000", t -> t.prefetch.set(0, new Toc.Prefetch(0, digest(3), 100, 1000, 90)));
        refused("members overlap at blob offset 11000", t -> { // two files naming one member
            Toc.Entry e = entry("usr/same", Toc.Entry.REG, 100);
            e.chunks.add(new Toc.Chunk(0, 100, digest(3), 11_000, 90));
            t.entries.add(e);
        });
    }

    @Test
    void prefetchEntriesOutOfRangeAreRefused() {
        refused("chunk size 0 is not 1 to", t -> t.prefetch.set(0, new Toc.Prefetch(0, digest(3), 0, 20_000, 90)));
        refused("chunk size 8388608 is not 1 to", t -> t.prefetch.set(0, new Toc.Prefetch(0, digest(3), 2 * C, 20_000, 90)));
        refused("rank -1", t -> t.prefetch.set(0, new Toc.Prefetch(-1, digest(3), 100, 20_000, 90)));
        refused("piece 4194300+256 is not inside", t -> t.prefetch.set(1, new Toc.Prefetch(1, digest(1), C, 21_000, 300, C - 4, 256, digest(9))));
        refused("piece -4096+256 is not inside", t -> t.prefetch.set(1, new Toc.Prefetch(1, digest(1), C, 21_000, 300, -4096, 256, digest(9))));
        refused("piece 0+-5 is not inside", t -> t.prefetch.set(1, new Toc.Prefetch(1, digest(1), C, 21_000, 300, 0, -5, digest(9))));
        refused("prefetch entry 1 piece: digest null", t -> t.prefetch.set(1, new Toc.Prefetch(1, digest(1), C, 21_000, 300, 0, 256, null)));
        refused("a whole chunk with a piece's offset or digest", t -> t.prefetch.set(0, new Toc.Prefetch(0, digest(3), 100, 20_000, 90, 0, 0, digest(9))));
        refused("is not one of the layer's chunks", t -> t.prefetch.set(0, new Toc.Prefetch(0, digest(8), 100, 20_000, 90)));
        refused("is not one of the layer's chunks", t -> t.prefetch.set(0, new Toc.Prefetch(0, digest(3), 99, 20_000, 90)));
    }

    @Test
    void malformedDigestsAreRefused() {
        String[] bad = {"sha256:" + "A".repeat(64), "sha256:" + "0".repeat(63), "sha256:" + "0".repeat(65), "sha512:" + "0".repeat(64), "sha256:" + "g".repeat(64),
                "0".repeat(71)};
        for (String d : bad) {
            refused("is not sha256: and 64 lowercase hex digits", t -> chunk(t, 0, new Toc.Chunk(0, C, d, 1000, 5000)));
            refused("is not sha256: and 64 lowercase hex digits", t -> t.prefetch.set(0, new Toc.Prefetch(0, d, 100, 20_000, 90)));
        }
    }

    @Test
    void malformedEntriesAreRefused() {
        refused("has no name", t -> t.entries.getFirst().name = null);
        refused("type null is not one a TOC holds", t -> t.entries.getFirst().type = null);
        refused("type socket is not one a TOC holds", t -> t.entries.getFirst().type = "socket");
        refused("a symlink without a target", t -> t.entries.get(3).linkName = null);
        refused("longer than 4096", t -> t.entries.getFirst().name = "a/".repeat(3000));
        refused("NUL", t -> t.entries.getFirst().name = "a\0b");
        refused("owner -1:0 out of range", t -> t.entries.getFirst().uid = -1);
        refused("owner 0:4294967296 out of range", t -> t.entries.getFirst().gid = 1L << 32);
        refused("mode 10644 has bits beyond 07777", t -> t.entries.getFirst().mode = 010644);
        refused("mtime nanoseconds 1000000000", t -> t.entries.getFirst().mtimeNsec = 1_000_000_000);
        refused("device 4294967296,0 out of range", t -> t.entries.getFirst().devMajor = 1L << 32);
        refused("xattr user.x is not base64", t -> t.entries.getFirst().xattrs.put("user.x", "!!"));
    }

    @Test
    void nullsWhereListsBelongAreRefused() {
        for (String json : new String[] {"{\"chunkSize\":4194304,\"entries\":null}", "{\"chunkSize\":4194304,\"prefetch\":null}",
                "{\"chunkSize\":4194304,\"entries\":[null]}", "{\"chunkSize\":4194304,\"entries\":[{\"name\":\"a\",\"type\":\"reg\",\"chunks\":null}]}",
                "{\"chunkSize\":4194304,\"entries\":[{\"name\":\"a\",\"type\":\"dir\",\"xattrs\":null}]}",
                "{\"chunkSize\":4194304,\"entries\":[{\"name\":\"a\",\"type\":\"reg\",\"size\":1,\"chunks\":[null]}]}", "null", "[]", "7", "\"toc\""})
            assertThrows(IOException.class, () -> Toc.parse(json.getBytes(StandardCharsets.UTF_8)), json);
    }

    @Test
    void trailingBytesAfterTheTocAreRefused() throws IOException {
        byte[] json = valid().toJson();
        for (String tail : new String[] {"{}", "[1]", " x", "{\"chunkSize\":1}"}) {
            byte[] more = (new String(json, StandardCharsets.UTF_8) + tail).getBytes(StandardCharsets.UTF_8);
            IOException e = assertThrows(IOException.class, () -> Toc.parse(more), tail);
            assertTrue(e.getMessage().startsWith("malformed TOC"), e.getMessage());
        }
        assertEquals(4, Toc.parse((new String(json, StandardCharsets.UTF_8) + " \n").getBytes(StandardCharsets.UTF_8)).entries.size(), "white space is no token");
    }

    /** A TOC of many tiny objects ("{}" is three bytes, an entry ~250 bytes of heap) stops parsing at its heap budget. */
    @Test
    void aTocThatWouldTakeTooMuchHeapIsRefusedWhileParsing() throws IOException {
        String many = "{\"chunkSize\":4194304,\"entries\":[" + "{},".repeat(100_000) + "{}]}";
        IOException e = assertThrows(IOException.class, () -> Toc.parse(many.getBytes(StandardCharsets.UTF_8), 10L << 20));
        assertTrue(e.getMessage().contains("more than 10 MiB of heap"), e.getMessage());
        String xattrs = "{\"chunkSize\":4194304,\"entries\":[{\"name\":\"a\",\"type\":\"dir\",\"xattrs\":{"
                + IntStream.range(0, 200_000).mapToObj(i -> "\"u" + i + "\":\"\"").collect(Collectors.joining(",")) + "}}]}";
        assertThrows(IOException.class, () -> Toc.parse(xattrs.getBytes(StandardCharsets.UTF_8), 10L << 20));
        // a real layer's TOC of the same JSON size fits
        Toc t = valid();
        for (int i = 0; i < 2000; i++) {
            Toc.Entry f = entry("usr/lib/python3/site-packages/pkg/module_" + i + ".py", Toc.Entry.REG, 5000);
            f.chunks.add(new Toc.Chunk(0, 5000, digest(1000 + i), 100_000 + i * 2000L, 1800));
            t.entries.add(f);
        }
        assertEquals(2004, Toc.parse(t.toJson(), 10L << 20).entries.size());
    }

    @Test
    void aGzipMemberBoundCoversTheWorstCaseOfDeflate() {
        // zlib's deflateBound for incompressible data plus the gzip frame, for every chunk size a node can have
        for (long c = 4096; c <= 1L << 30; c *= 2) {
            long zlibBound = c + (c >> 12) + (c >> 14) + (c >> 25) + 13 + 18;
            assertTrue(TocCheck.maxMember(c) >= zlibBound, "chunk size " + c);
            assertTrue(TocCheck.maxMember(c) <= c + c / 16 + (64 << 10));
        }
    }
}
