package org.dedupsnapshotter.daemon.lazypull;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

/** Lower-layer look-ups stay inside the layer, as containerd's fs.RootPath keeps them. */
class RootPathTest {
    @TempDir
    Path root;

    @Test
    void anAbsoluteSymlinkNamesThePathInsideTheLayerNotTheHosts() throws Exception {
        Files.createSymbolicLink(root.resolve("x"), Path.of("/root"));
        assertEquals(root.resolve("root"), RootPath.resolve(root, "x"));
        assertEquals(root.resolve("root/sub"), RootPath.resolve(root, "x/sub"));
    }

    @Test
    void dotDotNeverClimbsAboveTheRoot() throws Exception {
        Files.createDirectories(root.resolve("a/b"));
        Files.createSymbolicLink(root.resolve("a/b/up"), Path.of("../../../../etc"));
        assertEquals(root.resolve("etc"), RootPath.resolve(root, "a/b/up"));
        assertEquals(root.resolve("etc"), RootPath.resolve(root, "../../etc"));
    }

    @Test
    void relativeLinksAndChainsResolveLikeTheKernelWithinTheRoot() throws Exception {
        Files.createDirectories(root.resolve("usr/lib"));
        Files.createSymbolicLink(root.resolve("lib"), Path.of("usr/lib"));
        Files.createSymbolicLink(root.resolve("l2"), Path.of("/lib"));
        assertEquals(root.resolve("usr/lib/x"), RootPath.resolve(root, "l2/x"));
        assertEquals(root.resolve("a/b"), RootPath.resolve(root, "./a//b/"));
    }

    @Test
    void aSymlinkLoopIsAnError() throws Exception {
        Files.createSymbolicLink(root.resolve("loop"), Path.of("loop"));
        assertThrows(IOException.class, () -> RootPath.resolve(root, "loop/x"));
    }
}
