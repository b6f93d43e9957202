package org.dedupsnapshotter.daemon.memory;

import org.dedupsnapshotter.daemon.layers.Layout;
import org.dedupsnapshotter.config.Config;
import org.dedupsnapshotter.ksm.KsmNode;
import org.dedupsnapshotter.storage.MetaStore;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.*;

class MemoryDedupTest {
    @Test
    void withoutKsmTheFeatureIsOffWithTheReasonAndNothingFails(@TempDir Path dir) {
        // an absent sysfs directory stands in for a kernel without CONFIG_KSM (this kernel has it)
        MetaStore store = MetaStore.open(dir.resolve("metadata.db"));
        try {
            MemoryDedup m = new MemoryDedup(new KsmNode(dir.resolve("no-ksm")), Path.of("/proc"), new Layout(dir), store);
            assertFalse(m.supported());
            m.start(new Config.Ksm("all", "", true, new Config.KsmKernel(true, 100, null, null, null, null)));
            MemoryDedup.Figures f = m.figures();
            assertFalse(f.supported());
            assertTrue(f.unsupported().contains("CONFIG_KSM"), f.unsupported());
        } finally {
            store.close();
        }
    }

    @Test
    void processesOutsideOurSnapshotsAreNamedByPid(@TempDir Path dir) throws Exception {
        // a /proc of one process whose root is some other filesystem
        Path proc = Files.createDirectories(dir.resolve("proc/4242"));
        Files.writeString(proc.resolve("ksm_stat"), "ksm_rmap_items 10\nksm_zero_pages 0\nksm_merging_pages 7\nksm_process_profit 20000\nksm_merge_any: yes\nksm_mergeable: yes\n");
        Files.writeString(proc.resolve("comm"), "python3\n");
        Files.writeString(proc.resolve("mountinfo"), "1 0 0:1 / / rw - overlay overlay rw,lowerdir=/x,upperdir=/elsewhere/fs,workdir=/elsewhere/work\n");
        MetaStore store = MetaStore.open(dir.resolve("metadata.db"));
        try {
            MemoryDedup m = new MemoryDedup(KsmNode.system(), dir.resolve("proc"), new Layout(dir.resolve("root")), store);
            MemoryDedup.Figures f = m.figures();
            assertEquals(1, f.containers().size(), f.toString());
            assertEquals("pid 4242 (python3)", f.containers().getFirst().container());
            assertEquals(7 * 4096, f.containers().getFirst().mergingBytes());
        } finally {
            store.close();
        }
    }

    @Test
    void containerdKeysBecomeNamespaceAndContainerId() {
        assertEquals(new MemoryDedup.Owner("default", "web-1", "default/web-1"), MemoryDedup.containerOf("default/42/web-1"));
        assertEquals(new MemoryDedup.Owner("k8s.io", "abc", "k8s.io/abc"), MemoryDedup.containerOf("k8s.io/7/abc"));
        assertEquals(new MemoryDedup.Owner(null, "plain-key", "plain-key"), MemoryDedup.containerOf("plain-key"));
    }
}
