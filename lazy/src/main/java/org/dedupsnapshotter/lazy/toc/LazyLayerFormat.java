package org.dedupsnapshotter.lazy.toc;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/**
 * The names and fixed byte layouts a converted image shares with the node (docs/lazy-pull.md): the layer
 * descriptor annotations (under containerd.io/snapshot/, which containerd's unpacker copies into Prepare's
 * labels) and the 48-byte footer, the blob's last gzip member, which locates the TOC for readers without the
 * annotations.
 */
public final class LazyLayerFormat {
    private LazyLayerFormat() {}

    public static final String PREFIX = "containerd.io/snapshot/dedup.";
    /** sha256:… of the uncompressed TOC JSON. */
    public static final String TOC_DIGEST = PREFIX + "toc.digest";
    /** The TOC's gzip member in the blob: offset and length in bytes (decimal). */
    public static final String TOC_OFFSET = PREFIX + "toc.offset";
    public static final String TOC_LENGTH = PREFIX + "toc.length";
    public static final String TOC_VERSION = PREFIX + "toc.version";
    /** The layer blob's own digest (containerd's unpacker passes no digest without CRI's labels). */
    public static final String LAYER_DIGEST = PREFIX + "layer.digest";
    /** The uncompressed layer's digest (diff_id), for checks. */
    public static final String DIFF_ID = PREFIX + "layer.diffid";
    /** Where the image was pushed: HOST/REPOSITORY. CRI's cri.image-ref label wins over it. */
    public static final String SOURCE = PREFIX + "source";
    public static final String CHUNK_SIZE = PREFIX + "chunk.size";
    /** Labels CRI (and the shared client.Pull tool) add. */
    public static final String CRI_IMAGE_REF = "containerd.io/snapshot/cri.image-ref";
    public static final String CRI_LAYER_DIGEST = "containerd.io/snapshot/cri.layer-digest";
    public static final String CRI_MANIFEST_DIGEST = "containerd.io/snapshot/cri.manifest-digest";

    public static final int FOOTER_SIZE = 48;
    private static final byte[] MAGIC = {'D', 'E', 'D', 'U', 'P', '1'};

    /**
     * The footer: an empty gzip member whose header's extra field (subfield "DS") carries the TOC member's offset
     * and length, little-endian, then the magic. Any gzip reader skips it; it decompresses to nothing.
     */
    public static byte[] footer(long tocOffset, long tocLength) {
        ByteBuffer b = ByteBuffer.allocate(FOOTER_SIZE).order(ByteOrder.LITTLE_ENDIAN);
        b.put(new byte[] {0x1f, (byte) 0x8b, 8, 4, 0, 0, 0, 0, 0, (byte) 0xff}); // FLG = FEXTRA, no mtime, OS unknown
        b.putShort((short) 26);                                                  // XLEN
        b.put((byte) 'D').put((byte) 'S').putShort((short) 22);                 // subfield id and length
        b.putLong(tocOffset).putLong(tocLength).put(MAGIC);
        b.put(new byte[] {3, 0});                                                // an empty final deflate block
        b.putInt(0).putInt(0);                                                   // CRC-32 and size of nothing
        return b.array();
    }

    /** {tocOffset, tocLength} from a footer, or an IOException when the bytes are not one. */
    public static long[] parseFooter(byte[] f) throws IOException {
        if (f.length != FOOTER_SIZE) throw new IOException("footer is " + f.length + " bytes, not " + FOOTER_SIZE);
        ByteBuffer b = ByteBuffer.wrap(f).order(ByteOrder.LITTLE_ENDIAN);
        if ((b.get(0) & 0xff) != 0x1f || (b.get(1) & 0xff) != 0x8b || b.get(3) != 4 || b.get(12) != 'D' || b.get(13) != 'S')
            throw new IOException("not a dedup lazy-layer footer");
        for (int i = 0; i < MAGIC.length; i++) if (b.get(32 + i) != MAGIC[i]) throw new IOException("not a dedup lazy-layer footer (magic)");
        return new long[] {b.getLong(16), b.getLong(24)};
    }
}
