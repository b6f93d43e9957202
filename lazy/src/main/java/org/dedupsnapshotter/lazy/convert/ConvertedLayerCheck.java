package org.dedupsnapshotter.lazy.convert;

import org.dedupsnapshotter.lazy.toc.LazyLayerFormat;

import java.io.BufferedInputStream;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.security.MessageDigest;
import java.util.Arrays;
import java.util.zip.GZIPInputStream;

/**
 * Reads a written blob back as its two kinds of readers will before it is pushed: a plain gzip reader must get the
 * stream whose digest is the new diff_id; a node must find the TOC from the footer alone.
 */
final class ConvertedLayerCheck {
    private ConvertedLayerCheck() {}

    static void verify(Path blob, LazyLayerWriter.Result r) throws IOException {
        MessageDigest md = LazyLayerWriter.sha256();
        long n = 0;
        try (InputStream in = new GZIPInputStream(new BufferedInputStream(Files.newInputStream(blob), 1 << 16), 1 << 16)) {
            byte[] buf = new byte[1 << 16];
            for (int k; (k = in.read(buf)) > 0; n += k) md.update(buf, 0, k);
        }
        String got = LazyLayerWriter.hex(md);
        if (!got.equals(r.diffId()) || n != r.streamSize())
            throw new IOException("the converted blob " + blob + " gunzips to " + got + " (" + n + " bytes), not " + r.diffId() + " (" + r.streamSize() + " bytes)");
        try (FileChannel ch = FileChannel.open(blob, StandardOpenOption.READ)) {
            long[] toc = LazyLayerFormat.parseFooter(read(ch, ch.size() - LazyLayerFormat.FOOTER_SIZE, LazyLayerFormat.FOOTER_SIZE));
            if (toc[0] != r.tocOffset() || toc[1] != r.tocLength())
                throw new IOException("the converted blob's footer points at " + toc[0] + "+" + toc[1] + ", not the TOC at " + r.tocOffset() + "+" + r.tocLength());
            byte[] json;
            try (InputStream in = new GZIPInputStream(new ByteArrayInputStream(read(ch, toc[0], (int) toc[1])))) {
                json = in.readAllBytes();
            }
            if (!Arrays.equals(json, r.tocJson())) throw new IOException("the converted blob's TOC member does not inflate to the TOC");
        }
    }

    private static byte[] read(FileChannel ch, long at, int len) throws IOException {
        ByteBuffer b = ByteBuffer.allocate(len);
        while (b.hasRemaining()) if (ch.read(b, at + b.position()) < 0) throw new IOException("short read at " + at);
        return b.array();
    }
}
