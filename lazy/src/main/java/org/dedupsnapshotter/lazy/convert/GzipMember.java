package org.dedupsnapshotter.lazy.convert;

import java.io.ByteArrayOutputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.zip.CRC32;
import java.util.zip.Deflater;

/** One complete gzip member (RFC 1952): a member decompresses alone, and concatenated members read as one stream. */
public final class GzipMember {
    /** No file name, no mtime, OS unknown: the same bytes for the same input, whoever converts. */
    private static final byte[] HEADER = {0x1f, (byte) 0x8b, 8, 0, 0, 0, 0, 0, 0, (byte) 0xff};

    private GzipMember() {}

    public static byte[] of(byte[] data, int off, int len) {
        ByteArrayOutputStream out = new ByteArrayOutputStream(len / 2 + 64);
        out.writeBytes(HEADER);
        Deflater d = new Deflater(Deflater.DEFAULT_COMPRESSION, true);
        try {
            d.setInput(data, off, len);
            d.finish();
            byte[] buf = new byte[64 * 1024];
            while (!d.finished()) out.write(buf, 0, d.deflate(buf));
        } finally {
            d.end();
        }
        CRC32 crc = new CRC32();
        crc.update(data, off, len);
        out.writeBytes(ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putInt((int) crc.getValue()).putInt(len).array());
        return out.toByteArray();
    }
}
