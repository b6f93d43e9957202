package org.dedupsnapshotter.erofs;

import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.util.Arrays;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The decoder fsck --verify-data uses: what encode writes decodes to the chunk; damage is an error or other bytes. */
class Lz4PclustersDecodeTest {
    /** Half text-like (compresses), half random (stays raw), with a short last piece. */
    private static byte[] chunk(int length, long seed) {
        Random r = new Random(seed);
        byte[] b = new byte[length];
        for (int i = 0; i < length / 2; i++) b[i] = (byte) ("the quick brown fox ".charAt(i % 20) + (r.nextInt(50) == 0 ? 1 : 0));
        byte[] noise = new byte[length - length / 2];
        r.nextBytes(noise);
        System.arraycopy(noise, 0, b, length / 2, noise.length);
        return b;
    }

    @Test
    void whatEncodeWritesDecodesToTheChunk() throws IOException {
        for (int pcluster : new int[] {16 << 10, 64 << 10}) {
            Pclusters codec = new Pclusters(9, pcluster);
            for (int length : new int[] {1, 4096, 8193, 300_000, 4 << 20}) {
                byte[] data = chunk(length, length);
                Pclusters.Encoded e = codec.encode(data, 0, length);
                assertArrayEquals(data, Pclusters.decode(e.blocks(), length, pcluster, e.chunk().pieces()), length + " in " + pcluster);
            }
        }
    }

    @Test
    void aReusedOutputGivesTheSameBlocksAsAFreshOne() {
        Pclusters codec = new Pclusters(4, 64 << 10);
        byte[] out = new byte[4 << 20];
        Arrays.fill(out, (byte) 0x5a); // what an earlier chunk left there: the 0-padding and raw tails must not keep it
        for (int length : new int[] {4 << 20, 300_001, 8193}) {
            byte[] data = chunk(length, length + 7);
            Pclusters.Encoded fresh = codec.encode(data, 0, length);
            CompressedChunk c = codec.encodeInto(data, 0, length, out);
            assertArrayEquals(fresh.chunk().pieces(), c.pieces());
            assertArrayEquals(fresh.blocks(), Arrays.copyOf(out, c.blocks() * 4096), "chunk of " + length);
        }
    }

    @Test
    void damageIsAnErrorOrOtherBytesNeverASilentMatch() throws IOException {
        int pcluster = 64 << 10, length = 1 << 20;
        byte[] data = chunk(length, 3);
        Pclusters.Encoded e = new Pclusters(9, pcluster).encode(data, 0, length);
        byte[] pieces = e.chunk().pieces();
        assertTrue(pieces[0] != 0 && pieces[pieces.length - 1] == 0, "the first piece is compressed, the last raw");
        Random r = new Random(4);
        int errors = 0, other = 0;
        for (int i = 0; i < 20; i++) {
            byte[] damaged = e.blocks().clone();
            int at = r.nextInt(pieces[0] * 4096); // inside the first, compressed piece
            damaged[at] ^= (byte) (1 + r.nextInt(255));
            try {
                // decoding to other bytes is what the digest check is for; the same bytes (a match offset moved within
                // a repeating run) are no harm
                if (!Arrays.equals(Pclusters.decode(damaged, length, pcluster, pieces), data)) other++;
            } catch (IOException ex) {
                errors++;
            }
        }
        assertTrue(errors > 0, "some damage does not decompress at all (" + errors + " errors, " + other + " other bytes)");
        byte[] zeroed = e.blocks().clone();
        Arrays.fill(zeroed, 0, pieces[0] * 4096, (byte) 0);
        assertThrows(IOException.class, () -> Pclusters.decode(zeroed, length, pcluster, pieces));
        assertThrows(IOException.class, () -> Pclusters.decode(Arrays.copyOf(e.blocks(), 4096), length, pcluster, pieces), "too few blocks");
        assertThrows(IOException.class, () -> Pclusters.decode(e.blocks(), length, pcluster, Arrays.copyOf(pieces, 3)), "too few pieces");
    }

    /** ZSTD (decision 60): the same round trip; damage to a frame is an error, a zeroed piece too. */
    @Test
    void zstdPiecesDecodeAndDamageIsAnError() throws IOException {
        for (int pcluster : new int[] {16 << 10, 128 << 10}) {
            Pclusters codec = new Pclusters(Algorithm.ZSTD, 3, pcluster);
            for (int length : new int[] {1, 4096, 8193, 300_000, 4 << 20}) {
                byte[] data = chunk(length, length);
                Pclusters.Encoded e = codec.encode(data, 0, length);
                assertEquals(Algorithm.ZSTD, e.chunk().algorithm());
                assertArrayEquals(data, Pclusters.decode(Algorithm.ZSTD, e.blocks(), length, pcluster, e.chunk().pieces()), length + " in " + pcluster);
            }
        }
        int pcluster = 64 << 10, length = 1 << 20;
        byte[] data = chunk(length, 5);
        Pclusters.Encoded e = new Pclusters(Algorithm.ZSTD, 3, pcluster).encode(data, 0, length);
        byte[] pieces = e.chunk().pieces();
        assertTrue(pieces[0] != 0, "the first piece is compressed");
        byte[] zeroed = e.blocks().clone();
        Arrays.fill(zeroed, 0, pieces[0] * 4096, (byte) 0);
        assertThrows(IOException.class, () -> Pclusters.decode(Algorithm.ZSTD, zeroed, length, pcluster, pieces));
        byte[] badMagic = e.blocks().clone();
        int first = 0;
        while (badMagic[first] == 0) first++;
        badMagic[first + 1] ^= 0x40; // the frame's magic number
        assertThrows(IOException.class, () -> Pclusters.decode(Algorithm.ZSTD, badMagic, length, pcluster, pieces));
        // an LZ4 decoder does not read a ZSTD chunk as some other bytes silently: fsck takes the row's algorithm
        assertThrows(IOException.class, () -> Pclusters.decode(Algorithm.LZ4HC, e.blocks(), length, pcluster, pieces));
    }
}
