package org.dedupsnapshotter.lazy.convert;

/**
 * Bytes moved by a long step (a download, a conversion, an upload), for a live progress line on a terminal. A phase
 * starts with a label; its total grows as transfers become known (parallel downloads each add theirs) and done
 * grows as bytes move. Thread-safe. {@link #NONE} ignores everything (output piped: no live line).
 */
public interface ByteProgress {
    ByteProgress NONE = new ByteProgress() {
        @Override
        public void phase(String label) {}

        @Override
        public void expect(long bytes) {}

        @Override
        public void add(long bytes) {}
    };

    /** A new phase: done and total start again from 0. */
    void phase(String label);

    /** bytes more to move in this phase. */
    void expect(long bytes);

    /** bytes moved (negative: taken back, a transfer started again). */
    void add(long bytes);
}
