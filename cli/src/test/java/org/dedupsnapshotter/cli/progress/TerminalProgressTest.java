package org.dedupsnapshotter.cli.progress;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;

class TerminalProgressTest {
    @Test
    void theLiveLineShowsBytesOfTotalAndRate() {
        assertEquals("layer 2/4 (sha256:x): download: 5.0 MiB of 20.0 MiB (25 %), 2.6 MB/s",
                TerminalProgress.render("layer 2/4 (sha256:x): download", 5 << 20, 20 << 20, 2.0));
        assertEquals("downloading layers: 1.0 MiB, 1.0 MB/s", TerminalProgress.render("downloading layers", 1 << 20, 0, 1.048576),
                "no total known yet: bytes and rate alone");
    }
}
