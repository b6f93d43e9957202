package org.dedupsnapshotter.storage;

import org.junit.jupiter.api.Test;

import java.util.HexFormat;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;

class TraceTableTest extends StoreFixture {
    private Trace save(Trace run) {
        return store.write("save trace", tx -> tx.traces().save(run, false));
    }

    @Test
    void aTracesRunsAddTheirPiecesToTheChunksTheyShareAndKeepTheFirstOrder() {
        Digest a = new Digest(new byte[32]), b = new Digest(HexFormat.of().parseHex("b".repeat(64))), c = new Digest(HexFormat.of().parseHex("c".repeat(64)));
        save(new Trace("sha256:img", 1, List.of("sha256:l"), List.of(a, b), List.of(0b01L, 0b10L)));
        Trace t = save(new Trace("sha256:img", 1, List.of("sha256:l"), List.of(c, b, a), List.of(-1L, 0b100L, 0b01L)));
        assertEquals(List.of(a, b, c), t.chunks());
        assertEquals(List.of(0b01L, 0b110L, -1L), t.pieces());
        reopen();
        assertEquals(t, store.read(tx -> tx.traces().find("sha256:img")).orElseThrow());
        assertEquals(List.of("sha256:img"), store.read(tx -> tx.traces().withLayer("sha256:l")));
        assertEquals(List.of(-1L, -1L), save(new Trace("sha256:old", 1, List.of(), List.of(a, b))).pieces(), "a trace of whole chunks");
    }
}
