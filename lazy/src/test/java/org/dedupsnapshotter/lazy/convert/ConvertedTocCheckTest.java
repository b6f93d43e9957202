package org.dedupsnapshotter.lazy.convert;

import org.dedupsnapshotter.lazy.toc.Toc;
import org.dedupsnapshotter.lazy.toc.TocCheck;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.file.Path;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;

import static org.dedupsnapshotter.lazy.convert.LazyLayerWriterTest.CHUNK;
import static org.dedupsnapshotter.lazy.convert.LazyLayerWriterTest.everyKind;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;

/** What the converter writes passes every check a node makes of a TOC (a check refusing it would cost every pull its laziness). */
class ConvertedTocCheckTest {
    @TempDir
    Path spool;

    @Test
    void aConvertedLayerWithATracePassesTheNodesChecks() throws IOException {
        ByteArrayOutputStream blob = new ByteArrayOutputStream();
        ExecutorService compressors = Executors.newFixedThreadPool(2); // LazyLayerWriterTest's pool ends with its class
        LazyLayerWriter.Result r;
        try {
            r = new LazyLayerWriter(CHUNK, compressors, 2).write(new ByteArrayInputStream(everyKind(true)), blob, PrefetchRegionTest.plan(PrefetchRegionTest.TRACE), spool);
        } finally {
            compressors.shutdownNow();
        }
        Toc toc = Toc.parse(r.tocJson());
        assertFalse(toc.prefetch.isEmpty());
        TocCheck.check(toc, CHUNK, r.tocOffset());
        assertEquals(r.toc().entries.size(), toc.entries.size());
        // and its members lie before its TOC: a TOC offset one byte earlier is refused
        assertThrows(IOException.class, () -> TocCheck.check(toc, CHUNK, r.tocOffset() - 1));
        assertThrows(IOException.class, () -> TocCheck.check(toc, 2 * CHUNK, r.tocOffset()));
    }
}
