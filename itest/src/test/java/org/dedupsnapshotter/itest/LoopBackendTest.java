package org.dedupsnapshotter.itest;

import org.dedupsnapshotter.proto.snapshots.v1.*;
import org.dedupsnapshotter.sys.Libc;
import org.junit.jupiter.api.Test;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.*;

/**
 * mountBackend "loop": what kernels without file-backed EROFS get. Forced here (this kernel has file-backed
 * mounts), layers go through read-only, auto-clearing loop devices and must read back the same.
 */
class LoopBackendTest {
    @Test
    void layersMountThroughLoopDevicesAndReadBack() throws Exception {
        TestEnv env = TestEnv.daemonOnlyWithConfig("{\"mountBackend\": \"loop\", \"metrics\": {\"address\": \"\"}}");
        try {
            var api = env.snapshots();
            byte[] data = Images.random(77, 6 * 1024 * 1024 + 5);
            SnapshotMounts.writeLayer(api.prepare(PrepareSnapshotRequest.newBuilder().setKey("a").build()).getMountsList(), Map.of("data", data));
            api.commit(CommitSnapshotRequest.newBuilder().setName("L").setKey("a").build());

            String mountSource = Files.readAllLines(Path.of("/proc/self/mountinfo")).stream()
                    .filter(l -> l.contains(env.dedupRoot.toString()) && l.contains(" erofs ")).findFirst().orElseThrow();
            assertTrue(mountSource.contains("/dev/loop"), "the layer should be mounted from a loop device: " + mountSource);

            var mounts = api.view(ViewSnapshotRequest.newBuilder().setKey("v").setParent("L").build()).getMountsList();
            Path target = Files.createDirectories(env.dir.resolve("v"));
            SnapshotMounts.mount(mounts, target);
            try {
                assertEquals(Images.sha256sum(data), TreeListing.sha256(target.resolve("data")));
            } finally {
                Libc.umount2(target.toString(), Libc.MNT_DETACH);
            }
            api.remove(RemoveSnapshotRequest.newBuilder().setKey("v").build());
            api.remove(RemoveSnapshotRequest.newBuilder().setKey("L").build());
            assertEquals(List.of(), env.layerMounts(), "layer unmounted (its loop devices clear themselves)");
        } finally {
            env.close();
        }
    }
}
