package org.dedupsnapshotter.mount;

import java.io.IOException;
import java.nio.file.Path;
import java.util.Set;

/** Mounts layer images and says what is mounted: the kernel ({@link LayerMounter}), or a unit test's stand-in. */
public interface Mounter {
    /** How a layer reads its data device. */
    enum DeviceReads {
        /** With direct I/O where the kernel has it: each byte read through the layer is cached once, in the layer's files. */
        DIRECT,
        /**
         * Through the device's page cache: a lazy layer's reads find the chunks a fetch has just written there, instead
         * of waiting for the disk (at the price of a second cached copy until the layer is complete).
         */
        BUFFERED
    }

    /** Mounts the EROFS image read-only at target, its chunk data read from device. */
    void mount(Path image, Path device, Path target, DeviceReads reads) throws IOException;

    /** Detaches every mount at or below dir, deepest first (lazily: a user still holding one keeps working). */
    void unmountAll(Path dir) throws IOException;

    /** Whether layers read their data device with direct I/O ("on", or "off" and why): for stats. */
    default String directIo() { return "off"; }

    /** How complete layers read their device, as config key poolReads says: "direct" or "buffered" (decision 68). */
    default String poolReads() { return "direct"; }

    /** Every mount point there is now. */
    Set<String> mountPoints() throws IOException;

    /** Whether mounts share page cache between equal files (for stats). */
    default InodeShare inodeShare() { return InodeShare.unsupported("not a kernel mounter"); }
}
