package org.dedupsnapshotter.daemon.lazypull;

import org.dedupsnapshotter.lazy.fetch.Members;
import org.dedupsnapshotter.lazy.toc.Toc;
import org.dedupsnapshotter.storage.Digest;
import org.dedupsnapshotter.storage.MetaStore;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;

/** Staged pieces are keyed by their digest and checked again, against the taking layer's own TOC, when taken. */
class EarlyFetchTest {
    static final int CHUNK = 4 << 20, PIECE = 256 << 10;
    static final Digest D = Digest.parse("sha256:" + "d".repeat(64));

    @TempDir Path dir;
    MetaStore store;
    EarlyFetch early;

    @BeforeEach
    void open() {
        store = MetaStore.open(dir.resolve("m.db"));
        early = new EarlyFetch(null, store, null, true, FetchEvents.NONE);
    }

    @AfterEach
    void close() throws Exception { store.close(); }

    static byte[] bytes(int fill) {
        byte[] b = new byte[PIECE];
        Arrays.fill(b, (byte) fill);
        return b;
    }

    static Toc.Prefetch piece(byte[] data) {
        return new Toc.Prefetch(0, D.toString(), CHUNK, 1000, 100, 0, PIECE, Members.sha256(data));
    }

    @Test
    void aPieceStagedWithOtherBytesIsNotTakenByALayerAttestingItsOwn() throws Exception {
        byte[] hostile = bytes('e'), real = bytes('r');
        early.stageArrived(List.of(piece(hostile)), Map.of(Members.sha256(hostile), hostile));
        assertNull(early.take(D, piece(real), Runnable::run), "a layer took bytes staged under another piece digest");
        CompletableFuture<byte[]> own = early.take(D, piece(hostile), Runnable::run);
        assertArrayEquals(hostile, own.get(), "the layer that attests those bytes takes them");
    }

    @Test
    void aTakenPieceWhoseBytesDoNotMatchTheTakersDigestFails() {
        byte[] real = bytes('r'), other = bytes('x');
        // (a stager always checks; here the bytes are wrong anyway, so the taker's own check is what stops them)
        early.stageArrived(List.of(piece(real)), Map.of(Members.sha256(real), other));
        ExecutionException e = assertThrows(ExecutionException.class, () -> early.take(D, piece(real), Runnable::run).get());
        assertInstanceOf(Members.BadDigestException.class, e.getCause());
    }
}
