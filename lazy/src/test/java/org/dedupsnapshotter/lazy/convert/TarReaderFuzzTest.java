package org.dedupsnapshotter.lazy.convert;

import net.jqwik.api.Arbitraries;
import net.jqwik.api.Arbitrary;
import net.jqwik.api.Combinators;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.Provide;
import net.jqwik.api.Tuple;
import net.jqwik.api.statistics.Statistics;
import org.dedupsnapshotter.lazy.toc.Toc;
import org.junit.jupiter.api.Test;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.Arrays;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;

/**
 * Arbitrary and mutated tars (a layer's bytes come from whoever pushed the image): TarReader reads them to entries or
 * refuses them with an IOException, never another exception, never hangs; and what it reads is the input byte for byte
 * (sink bytes and data in call order).
 */
class TarReaderFuzzTest {
    private static final int BLOCK = 512;

    @Property
    void aTarReadsToEntriesOrAnIOException(@ForAll("tars") byte[] tar) {
        Statistics.collect(assertTimeoutPreemptively(Duration.ofSeconds(10), () -> read(tar)));
        Statistics.coverage(c -> { // the generator must reach both sides
            c.check("read").percentage(p -> p > 10);
            c.check("refused").percentage(p -> p > 10);
        });
    }

    /** Reads every entry and its data as the converter does; an IOException is a refusal, anything else fails the test. */
    static String read(byte[] tar) {
        ByteArrayOutputStream seen = new ByteArrayOutputStream();
        TarReader r = new TarReader(new ByteArrayInputStream(tar), seen::write);
        try {
            for (Toc.Entry e; (e = r.next()) != null; ) {
                if (!e.type.equals(Toc.Entry.REG)) continue;
                byte[] buf = new byte[64 << 10];
                for (long left = e.size; left > 0; ) {
                    int n = (int) Math.min(buf.length, left);
                    r.readData(buf, 0, n);
                    seen.write(buf, 0, n);
                    left -= n;
                }
            }
        } catch (IOException refused) {
            return "refused";
        }
        assertArrayEquals(tar, seen.toByteArray(), "sink bytes and data are the input");
        return "read";
    }

    /** Found by this test: an extension header whose base-256 size is negative (it threw NegativeArraySizeException). */
    @Test
    void anExtensionHeaderOfNegativeSizeIsRefused() {
        for (char type : new char[] {'x', 'g', 'L', 'K'}) {
            byte[] tar = new TestTar().entry("x", type, 0644, 0, 0, 0, new byte[0], "", 0, 0).finish();
            Arrays.fill(tar, 124, 136, (byte) 0xff); // -1 in base-256
            fixChecksum(tar, 0);
            IOException e = assertThrows(IOException.class, () -> new TarReader(new ByteArrayInputStream(tar), (b, o, l) -> {}).next(), "type " + type);
            assertTrue(e.getMessage().contains("extension header of -1 bytes"), e.getMessage());
        }
    }

    @Provide
    Arbitrary<byte[]> tars() {
        Arbitrary<byte[]> valid = entries().list().ofMaxSize(6).map(TarReaderFuzzTest::tar);
        return Arbitraries.frequencyOf(
                Tuple.of(1, valid),
                Tuple.of(5, Combinators.combine(valid, mutations()).as(TarReaderFuzzTest::mutate)),
                Tuple.of(1, Arbitraries.bytes().array(byte[].class).ofMaxSize(3 * BLOCK)));
    }

    /** One entry: a kind of header (with what may come with it) and its fields. */
    private Arbitrary<TestTar> entries() {
        Arbitrary<String> names = Arbitraries.of("a", "./a/", "a/b", "../x", "/abs", "d/", "", ".wh.a", "a/.wh..wh..opq", "ü/ñ", "x".repeat(100), "p/".repeat(60) + "q");
        Arbitrary<Character> types = Arbitraries.of('0', '\0', '1', '2', '3', '4', '5', '6', '7', 'S', 'x', 'g', 'L', 'K', 'V', 'Z');
        Arbitrary<byte[]> data = Arbitraries.bytes().array(byte[].class).ofMaxSize(2 * BLOCK + 3);
        Arbitrary<Map<String, byte[]>> pax = Arbitraries.maps(Arbitraries.of("path", "linkpath", "size", "uid", "gid", "mtime", "SCHILY.xattr.user.a", "GNU.sparse.map", "x"),
                Arbitraries.of("", "0", "-1", "12", "1700000000.123456789", "-1.5", "9223372036854775807", "99999999999999999999", "a/b", "\0", "1.x").map(s -> s.getBytes(StandardCharsets.UTF_8)))
                .ofMaxSize(3);
        return Combinators.combine(names, types, data, pax, Arbitraries.integers().between(0, 3)).as((name, type, bytes, records, kind) -> {
            TestTar t = new TestTar();
            switch (kind) {
                case 0 -> t.entry(name, type, 0644, 0, 0, 1_600_000_000L, bytes, "target", 1, 3);
                case 1 -> t.pax('x', records).entry(name, type, 0644, 0, 0, 0, bytes, "", 0, 0);
                case 2 -> t.gnuLong('L', name + "/long").entry("short", type, 0644, 0, 0, 0, bytes, "", 0, 0);
                default -> t.entry(name, "pre/fix", type, 0755, 1, 2, 3, bytes, bytes.length, "l", 0, 0, "ustar\0", "00");
            }
            return t;
        });
    }

    private static byte[] tar(List<TestTar> entries) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        for (TestTar t : entries) out.writeBytes(t.unfinished());
        out.writeBytes(new byte[2 * BLOCK]);
        return out.toByteArray();
    }

    /**
     * Edits, each at a block (the first ones are mostly headers in these small tars) and an offset in it, of one kind;
     * then a cut; header checksums fixed or not.
     */
    private record Mutation(List<int[]> edits, double cut, boolean fixChecksums) {}

    private Arbitrary<Mutation> mutations() {
        Arbitrary<int[]> edit = Combinators.combine(Arbitraries.integers().between(0, 12), Arbitraries.integers().between(0, BLOCK - 1),
                Arbitraries.integers().between(-128, 255), Arbitraries.integers().between(0, 3)).as((block, at, value, how) -> new int[] {block * BLOCK + at, value, how});
        return Combinators.combine(edit.list().ofMinSize(1).ofMaxSize(8), Arbitraries.doubles().between(0, 1.2), Arbitraries.of(true, true, false))
                .as(Mutation::new);
    }

    /** Field offsets worth hitting: size, mode, type, checksum, magic, devices, prefix. */
    private static final int[] FIELDS = {124, 100, 156, 148, 257, 329, 345, 0, 157, 136};

    private static byte[] mutate(byte[] tar, Mutation m) {
        byte[] b = tar.clone();
        for (int[] e : m.edits()) {
            int at = e[0];
            if (at >= b.length) continue;
            byte v = (byte) e[1];
            switch (e[2]) {
                case 0 -> b[at] = v;                                                     // any byte
                case 1 -> b[at / BLOCK * BLOCK + FIELDS[Math.floorMod(e[1], FIELDS.length)]] = v; // a header field's first byte
                case 2 -> { // a base-256 size (GNU's encoding of large and negative numbers)
                    int f = at / BLOCK * BLOCK + 124;
                    if (f + 12 <= b.length) {
                        long n = (long) v * 1_000_003L;
                        Arrays.fill(b, f, f + 4, (byte) (n < 0 ? 0xff : 0));
                        b[f] |= (byte) 0x80;
                        for (int i = 0; i < 8; i++) b[f + 4 + i] = (byte) (n >>> (56 - 8 * i));
                    }
                }
                default -> { // an octal size field of up to 11 digits
                    int f = at / BLOCK * BLOCK + 124;
                    if (f + 12 <= b.length) {
                        byte[] digits = String.format("%011o", (long) Math.abs(v) * 123_456_789L).getBytes(StandardCharsets.US_ASCII);
                        System.arraycopy(digits, 0, b, f, 11);
                    }
                }
            }
        }
        if (m.fixChecksums()) for (int h = 0; h + BLOCK <= b.length; h += BLOCK) fixChecksum(b, h);
        int cut = (int) Math.min(b.length, m.cut() * b.length);
        return m.cut() < 1 ? Arrays.copyOf(b, cut) : b;
    }

    /** Recomputes a block's checksum if it looks like a header (so mutations get past the checksum to the fields). */
    private static void fixChecksum(byte[] b, int h) {
        boolean zero = true;
        for (int i = h; i < h + BLOCK && zero; i++) zero = b[i] == 0;
        if (zero) return;
        long sum = 0;
        for (int i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? ' ' : b[h + i] & 0xff;
        byte[] s = String.format("%06o\0 ", sum).getBytes(StandardCharsets.US_ASCII);
        System.arraycopy(s, 0, b, h + 148, 8);
    }
}
