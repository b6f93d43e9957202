package org.dedupsnapshotter.lazy.fetch;

import net.jqwik.api.Arbitraries;
import net.jqwik.api.Arbitrary;
import net.jqwik.api.Combinators;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.Provide;
import net.jqwik.api.Tuple;
import net.jqwik.api.statistics.Statistics;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.time.Duration;
import java.util.Arrays;
import java.util.zip.GZIPOutputStream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;

/**
 * Gzip members as a registry may send them (a TOC names their ranges; the registry the bytes): read out of a Range
 * answer, inflated and checked, they give exactly the chunk the TOC names, or an IOException; never another
 * exception, never a hang, never more bytes than claimed.
 */
class MembersFuzzTest {
    /** A blob: bytes before the member, the member (maybe mutated), bytes after; what the TOC claims about it. */
    record Case(byte[] data, byte[] blob, long at, long offset, long length, int size, String digest) {}

    @Property
    void aMemberGivesItsChunkOrAnIOException(@ForAll("cases") Case c) {
        String outcome = assertTimeoutPreemptively(Duration.ofSeconds(10), () -> {
            byte[] chunk;
            try (InputStream in = new ByteArrayInputStream(c.blob(), (int) Math.min(c.at(), c.blob().length), c.blob().length)) {
                byte[] member = Members.read(in, c.at(), c.offset(), c.length());
                assertEquals(c.length(), member.length);
                chunk = Members.chunk(member, c.size(), c.digest(), "fuzz");
            } catch (IOException refused) {
                return "refused";
            }
            assertEquals(c.size(), chunk.length);
            assertEquals(c.digest(), Members.sha256(chunk));
            if (c.digest().equals(Members.sha256(c.data()))) assertArrayEquals(c.data(), chunk);
            return "inflated";
        });
        Statistics.collect(outcome);
        Statistics.coverage(k -> { // the generator must reach both sides
            k.check("inflated").percentage(p -> p > 5);
            k.check("refused").percentage(p -> p > 20);
        });
    }

    /** Lengths and sizes no TOC that passed TocCheck has: refused with an IOException, nothing allocated for them. */
    @Property(tries = 100)
    void absurdLengthsAreRefused(@ForAll("absurd") long length) {
        assertThrows(IOException.class, () -> Members.read(new ByteArrayInputStream(new byte[10]), 0, 0, length));
        if (length >= Integer.MIN_VALUE && length < 0)
            assertThrows(IOException.class, () -> Members.inflate(gzip(new byte[3]), 0, 10, (int) length));
    }

    @Provide
    Arbitrary<Long> absurd() {
        return Arbitraries.oneOf(Arbitraries.longs().lessOrEqual(-1), Arbitraries.longs().greaterOrEqual(Integer.MAX_VALUE - 7L));
    }

    @Provide
    Arbitrary<Case> cases() {
        Arbitrary<byte[]> data = Arbitraries.oneOf(
                Arbitraries.bytes().array(byte[].class).ofMaxSize(70_000),
                Arbitraries.bytes().between((byte) 'a', (byte) 'd').array(byte[].class).ofMaxSize(300_000));
        // each way of straying is taken in some cases only, so that some members are exactly right
        Arbitrary<int[]> edits = Arbitraries.frequencyOf(Tuple.of(1, Arbitraries.just(new int[0])),
                Tuple.of(1, Arbitraries.integers().between(0, Integer.MAX_VALUE).array(int[].class).ofMinSize(1).ofMaxSize(6)));
        Arbitrary<int[]> shape = Arbitraries.frequencyOf(Tuple.of(6, Arbitraries.just(0)), Tuple.of(1, Arbitraries.integers().between(-3, 3)))
                .array(int[].class).ofSize(6);
        return Combinators.combine(data, edits, shape, Arbitraries.integers().between(0, 2000), Arbitraries.of(true, false)).as(MembersFuzzTest::make);
    }

    /**
     * shape: [0] concatenate a second member, [1] size claimed off by, [2] length off by, [3] offset off by, [4] the
     * Range answer starts off by, [5] the digest is another chunk's; edits change bytes of the member.
     */
    private static Case make(byte[] data, int[] edits, int[] shape, int prefix, boolean rightDigest) {
        try {
            byte[] member = gzip(data);
            if (shape[0] > 1) member = concat(member, gzip(Arrays.copyOf(data, data.length / 2)));
            for (int e : edits) if (member.length > 0) member[e % member.length] ^= (byte) (1 + e % 255);
            byte[] blob = concat(concat(new byte[prefix], member), new byte[shape[0] & 7]);
            long offset = Math.max(0, prefix + shape[3]), length = Math.max(0, member.length + shape[2]);
            int size = Math.max(0, data.length + shape[1]);
            String digest = rightDigest && shape[5] != 3 ? Members.sha256(data) : Members.sha256(Arrays.copyOf(data, size));
            return new Case(data, blob, Math.max(0, offset + shape[4]), offset, length, size, digest);
        } catch (IOException e) {
            throw new IllegalStateException(e);
        }
    }

    static byte[] gzip(byte[] data) throws IOException {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        try (GZIPOutputStream z = new GZIPOutputStream(out)) {
            z.write(data);
        }
        return out.toByteArray();
    }

    private static byte[] concat(byte[] a, byte[] b) {
        byte[] out = Arrays.copyOf(a, a.length + b.length);
        System.arraycopy(b, 0, out, a.length, b.length);
        return out;
    }
}
