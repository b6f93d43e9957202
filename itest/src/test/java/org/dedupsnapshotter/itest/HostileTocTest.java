package org.dedupsnapshotter.itest;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.util.Arrays;
import java.util.List;
import java.util.function.Consumer;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * TOCs that lie about chunk sizes and places, rewritten after conversion (HostileImages) and pulled through CRI's
 * path: bad sizes fall back to the normal unpack (where containerd checks the diff_id); a TOC claiming another
 * image's 4 MiB chunk is 4096 bytes is refused when the real bytes arrive — the honest unpack gets its own extent,
 * the liar is quarantined. Images pulled before and after read back byte-exact, fsck finds nothing, the daemon still
 * serves lazy reads.
 */
class HostileTocTest {
    static final ObjectMapper JSON = new ObjectMapper();
    static final int MIB = 1 << 20;
    static TestEnv env;
    static byte[] victimData = Images.random(501, 9 * MIB + 77), neighbourData = Images.random(502, 6 * MIB + 5), hostileData = Images.random(503, 9 * MIB),
            afterData = Images.random(505, 5 * MIB), neighbour2Data = Images.random(506, 6 * MIB + 9);
    /** Each test's images are its own: a chunk one test brings to the node must not change what the other shows. */
    static String victimPlain, victimLazy, neighbourLazy, hostileLazy, afterLazy, neighbour2Lazy;

    @BeforeAll
    static void start() throws Exception {
        env = TestEnv.fullWithConfig("{\"lazy\": {\"readDeadline\": \"10s\", \"prefetchDelay\": \"60s\"}}");
        victimPlain = OciImage.push(env.registry(), "itest/toc-victim", "1", List.of(withFile("data", victimData)), List.of("/bin/sh"));
        victimLazy = Images.convert(victimPlain, env.registry() + "/itest/toc-victim-lazy:1");
        neighbourLazy = Images.convert(OciImage.push(env.registry(), "itest/toc-neighbour", "1", List.of(withFile("data", neighbourData)),
                List.of("/bin/sh")), env.registry() + "/itest/toc-neighbour-lazy:1");
        neighbour2Lazy = Images.convert(OciImage.push(env.registry(), "itest/toc-neighbour2", "1", List.of(withFile("data", neighbour2Data)),
                List.of("/bin/sh")), env.registry() + "/itest/toc-neighbour2-lazy:1");
        afterLazy = Images.convert(OciImage.push(env.registry(), "itest/toc-after", "1", List.of(withFile("data", afterData)),
                List.of("/bin/sh")), env.registry() + "/itest/toc-after-lazy:1");
        hostileLazy = Images.convert(OciImage.push(env.registry(), "itest/toc-hostile", "1", List.of(withFile("data", hostileData)),
                List.of("/bin/sh")), env.registry() + "/itest/toc-hostile-lazy:1");
    }

    @AfterAll
    static void stop() throws Exception {
        if (env != null) env.close();
    }

    static byte[] withFile(String name, byte[] data) throws Exception {
        return Images.base().file(name, data, TarWriter.Meta.of(0644)).finish();
    }

    /** The TOC entry of /data in a hostile copy's only layer. */
    static ObjectNode dataEntry(HostileImages.Layer l) {
        for (JsonNode e : l.toc().withArray("entries")) if (e.path("name").asText().equals("data")) return (ObjectNode) e;
        throw new AssertionError("no data entry in " + l.toc());
    }

    /** A copy of the hostile image whose /data entry (size, chunks) the editor rewrites. */
    static String hostile(String tag, Consumer<ObjectNode> editData) throws Exception {
        return HostileImages.from(env.registry(), "itest/toc-hostile-lazy", "1")
                .layer(0, l -> editData.accept(dataEntry(l)))
                .push("itest/toc-hostile-" + tag, "1");
    }

    static ObjectNode chunk(ObjectNode entry, int i) { return (ObjectNode) entry.withArray("chunks").get(i); }



    static void assertReads(String namespace, String ref, byte[] data, String container) throws Exception {
        String out = env.ctrIn(namespace, "run", "--rm", "--snapshotter", "dedup", ref, container, "/bin/sha256sum", "/data").orThrow("ctr run " + ref).out();
        assertTrue(out.contains(Images.sha256sum(data)), ref + " read other bytes: " + out + "\n" + env.daemon.logTail());
    }

    @Test
    void badChunkSizesFallBackToTheNormalUnpack() throws Exception {
        env.criPull("before", neighbourLazy).orThrow("pull before");
        assertReads("before", neighbourLazy, neighbourData, "n0");
        long poolEnd = env.stats().path("poolFileBytes").asLong();
        // /data is 9 MiB: chunks [0, 4M) [4M, 8M) [8M, 9M)
        List<Consumer<ObjectNode>> lies = List.of(
                e -> {                                                                        // a zero-length middle chunk
                    chunk(e, 1).put("size", 0);
                    chunk(e, 2).put("offset", 4 * MIB);
                    e.put("size", 5 * MIB);
                },
                e -> {                                                                        // negative: would move the pool's end back
                    chunk(e, 2).put("size", -4096);
                    e.put("size", 8 * MIB - 4096);
                },
                e -> {                                                                        // larger than the chunk size
                    chunk(e, 0).put("size", 8 * MIB);
                    chunk(e, 1).put("offset", 8 * MIB);
                    chunk(e, 2).put("offset", 12 * MIB);
                    e.put("size", 13 * MIB);
                },
                e -> {                                                                        // a 1-byte middle chunk, offsets contiguous
                    chunk(e, 1).put("size", 1);
                    chunk(e, 2).put("offset", 4 * MIB + 1);
                    e.put("size", 5 * MIB + 1);
                },
                e -> chunk(e, 1).put("blobOffset", chunk(e, 0).get("blobOffset").asLong())); // overlapping members
        int i = 0;
        for (Consumer<ObjectNode> lie : lies) {
            String ref = hostile("sizes" + i, lie);
            Pull pull = env.criPull("hostile" + i, ref);
            assertEquals(0, pull.code(), "pull " + i + " failed instead of falling back: " + pull.out());
            assertFalse(pull.layersDownloaded() == 0, "lie " + i + " was pulled lazily: " + pull.out());
            assertReads("hostile" + i, ref, hostileData, "h" + i);
            i++;
        }
        assertTrue(env.stats().path("poolFileBytes").asLong() >= poolEnd, "the pool's end moved back");
        assertReads("before", neighbourLazy, neighbourData, "n1");
        env.criPull("after", afterLazy).orThrow("pull after");
        assertReads("after", afterLazy, afterData, "a1");
        env.assertFsckClean();
    }

    @Test
    void aTocClaimingAnotherImagesChunkIsShortIsRefusedWhenTheRealBytesArrive() throws Exception {
        // the victim's first chunk, 4 MiB: the liar's /data says it is that chunk, and 4096 bytes long
        String stolen = "sha256:" + Images.sha256sum(Arrays.copyOf(victimData, 4 * MIB));
        String liar = HostileImages.from(env.registry(), "itest/toc-hostile-lazy", "1").layer(0, l -> {
            long[] at = l.appendMember(Images.random(504, 4096)); // a member of the claimed size: any bytes, they will not verify
            ObjectNode e = dataEntry(l);
            ObjectNode first = chunk(e, 0).put("digest", stolen).put("size", 4096).put("blobOffset", at[0]).put("blobLength", at[1]);
            e.withArray("chunks").removeAll().add(first);
            e.put("size", 4096);
        }).push("itest/toc-hostile-short", "1");
        Pull liarPull = env.criPull("liar", liar).orThrow("liar pull");
        assertTrue(liarPull.layersDownloaded() == 0, "the liar was not pulled lazily (the test needs its claim recorded): " + liarPull.out());
        env.criPull("neighbours", neighbour2Lazy).orThrow("neighbour pull"); // allocated right after the liar's reservations
        assertReads("neighbours", neighbour2Lazy, neighbour2Data, "n2");

        // the victim's ordinary unpack: its real 4 MiB chunk must not be written over the 4 KiB claim's neighbours
        env.ctrIn(TestEnv.NS, "images", "pull", "--plain-http", "--snapshotter", "dedup", victimPlain).orThrow("victim pull");
        assertReads(TestEnv.NS, victimPlain, victimData, "v2");
        assertReads("neighbours", neighbour2Lazy, neighbour2Data, "n3");
        env.criPull("victim-lazy", victimLazy).orThrow("lazy victim pull");
        assertReads("victim-lazy", victimLazy, victimData, "v3");
        env.assertFsckClean();
        String ls = env.dedupctl("ls").orThrow("ls").out();
        assertTrue(ls.contains("quarantined"), "the liar's layer is not quarantined:\n" + ls + "\n" + env.daemon.logTail());
    }

}
