package org.dedupsnapshotter.ksm;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Optional;

import static org.junit.jupiter.api.Assertions.*;

class KsmNodeTest {
    @Test
    void readsThisKernelsFigures() throws Exception {
        KsmNode node = KsmNode.system();
        assertEquals(Optional.empty(), node.unsupported(), "this kernel has KSM and PR_SET_MEMORY_MERGE");
        KsmNode.Figures f = node.figures();
        assertEquals(Long.parseLong(Files.readString(KsmNode.SYSFS.resolve("pages_to_scan")).trim()), f.pagesToScan());
        assertTrue(List.of("none", "scan-time").contains(node.setting("advisor_mode")), node.setting("advisor_mode"));
    }

    @Test
    void aKernelWithoutKsmIsNamed(@TempDir Path dir) {
        // a missing sysfs directory stands in for a kernel built without CONFIG_KSM (this one has it)
        String why = new KsmNode(dir.resolve("absent")).unsupported().orElseThrow();
        assertTrue(why.contains("CONFIG_KSM"), why);
    }

    /** Settings are written to a copy of the sysfs layout (this test must not change the node's KSM). */
    @Test
    void appliesOnlyWhatIsSetRunLast(@TempDir Path dir) throws Exception {
        for (String f : List.of("run", "pages_to_scan", "sleep_millisecs", "use_zero_pages", "max_page_sharing"))
            Files.writeString(dir.resolve(f), "7\n");
        Files.writeString(dir.resolve("advisor_mode"), "[none] scan-time\n");
        KsmNode node = new KsmNode(dir);
        assertEquals(List.of(), node.apply(new KsmNode.Settings(null, null, null, null, null, null)));
        List<String> done = node.apply(new KsmNode.Settings(true, 1000, null, null, false, null));
        assertEquals(List.of("pages_to_scan=1000", "use_zero_pages=0", "run=1"), done);
        assertEquals("7", Files.readString(dir.resolve("sleep_millisecs")).trim(), "unset keys are left alone");
        assertEquals("none", node.setting("advisor_mode"));
        Files.delete(dir.resolve("max_page_sharing"));
        IOException e = assertThrows(IOException.class, () -> node.apply(new KsmNode.Settings(null, null, null, null, null, 512)));
        assertTrue(e.getMessage().contains("ksm.kernel.maxPageSharing"), e.getMessage());
    }
}
