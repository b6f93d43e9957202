package org.dedupsnapshotter.lazy.convert;

import java.io.FilterInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.util.function.LongConsumer;

/** Passes bytes through, telling onBytes how many went by (for a progress line). */
public final class CountingInputStream extends FilterInputStream {
    private final LongConsumer onBytes;

    public CountingInputStream(InputStream in, LongConsumer onBytes) {
        super(in);
        this.onBytes = onBytes;
    }

    @Override
    public int read() throws IOException {
        int b = in.read();
        if (b >= 0) onBytes.accept(1);
        return b;
    }

    @Override
    public int read(byte[] b, int off, int len) throws IOException {
        int n = in.read(b, off, len);
        if (n > 0) onBytes.accept(n);
        return n;
    }

    @Override
    public long skip(long n) throws IOException {
        long k = in.skip(n);
        if (k > 0) onBytes.accept(k);
        return k;
    }
}
