package org.dedupsnapshotter.cli.progress;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;

class TerminalProgressTest {
    @Test
    void theLiveLineShowsBytesOfTotalAndRate() {
        assertEquals("layer 2/4 (sha256:x): download: 5.0 MiB of 20.0 MiB (25 %), 2.6 MB/s",
                TerminalProgress.render("layer 2/4 (sha256:x): download", 5 << 20, 20 << 20, 2.0));
        assertEquals("layer 1/1 (sha256:fd66e60963b1): push: 0.0 MiB of 1.0 MiB (0 %), 0.0 MB/s",
                TerminalProgress.render("layer 1/1 (sha256:fd66e60963b10013454b302f7429897243d55c62eefa283e9466db6ad23980ba): push", 0, 1 << 20, 1),
                "a digest is shortened to 12 hex digits");
        assertEquals("downloading layers: 1.0 MiB, 1.0 MB/s", TerminalProgress.render("downloading layers", 1 << 20, 0, 1.048576),
                "no total known yet: bytes and rate alone");
    }
}
