package org.dedupsnapshotter.daemon.lazypull;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;

class LazyWarmUpTest {
    /**
     * The made-up layers go all the way through the pull path (a layer the path refused would make the warm-up warm
     * nothing, silently: run only logs), and the warm-up leaves nothing behind in the daemon's directory.
     */
    @Test
    void theMadeUpLayersGoThroughThePullPathAndLeaveNothingBehind(@TempDir Path scratch) throws IOException {
        LazyWarmUp.rounds(scratch, 2);
        try (Stream<Path> left = Files.list(scratch)) {
            assertEquals(0, left.count(), "scratch files left by the warm-up");
        }
    }
}
