package org.dedupsnapshotter.itest;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Pieces cross no images: a converted image whose TOC ships "pieces" of a chunk it shares with a victim, with bytes
 * of its own (and their own piece digests, so they pass its own check), pulled lazily before the victim. The pool is
 * node-wide and a pool read does not say through which layer it came, so the hostile pieces may answer reads only
 * while every layer holding the chunk attests them; once the victim's layer (which does not) holds it too, a read
 * fetches the whole chunk, checked by its SHA-256, and the victim reads its own bytes. Once the hostile layer is
 * complete, its proof finds that the node's bytes do not give its diff_id, and it is quarantined.
 */
class HostilePiecesTest {
    static final ObjectMapper JSON = new ObjectMapper();
    static final int FILE = 4 << 20, PIECE = 256 << 10;
    static TestEnv env;

    @BeforeAll
    static void start() throws Exception {
        // the background fill waits a minute: the shared chunk stays absent while the test reads it
        env = TestEnv.fullWithConfig("{\"lazy\": {\"prefetchDelay\": \"60s\"}}");
    }

    @AfterAll
    static void stop() throws Exception {
        if (env != null) env.close();
    }

    private String sha256sumOf(String image, String container, String script) throws Exception {
        return env.ctr("run", "--rm", "--snapshotter", "dedup", image, container, "/bin/sh", "-c", script);
    }

    /** Waits until a lazy layer of the repository is quarantined. */
    private static void awaitQuarantine(String repo) throws Exception {
        long until = System.nanoTime() + 60_000_000_000L;
        while (System.nanoTime() < until) {
            for (JsonNode s : JSON.readTree(env.dedupctl("ls", "--json").orThrow("ls").out()))
                if (s.path("proof").asText().equals("quarantined") && s.path("labels").toString().contains(repo)) return;
            Thread.sleep(300);
        }
        throw new AssertionError("no layer of " + repo + " was quarantined:\n" + env.daemon.logTail());
    }

    private static String sha(byte[] b, int from, int to) throws Exception { return Images.sha256sum(Arrays.copyOfRange(b, from, to)); }

    /** The first 64 KiB of /app/big (in piece 0) and 64 KiB at 512 KiB (in piece 2), then the whole file. */
    private static final String READS = "dd if=/app/big bs=65536 count=1 2>/dev/null | sha256sum; "
            + "dd if=/app/big bs=65536 skip=8 count=1 2>/dev/null | sha256sum; sha256sum /app/big";

    @Test
    void piecesAnImageShipsForAChunkItSharesWithAVictimNeverAnswerTheVictimsReads() throws Exception {
        byte[] big = Images.random(700, FILE); // one chunk, D, in both images
        String d = "sha256:" + Images.sha256sum(big);
        TarWriter victimLayer = new TarWriter().dir("./", TarWriter.Meta.of(0755)).dir("app", TarWriter.Meta.of(0755))
                .file("app/big", big, TarWriter.Meta.of(0644));
        String victim = Images.convert(OciImage.push(env.registry(), "itest/piece-victim", "1",
                List.of(Images.base().finish(), victimLayer.finish()), List.of("/bin/sh")), env.registry() + "/itest/piece-victim-lazy:1");

        // the hostile image holds D too (its TOC names it, with D's real member), and ships pieces 0 and 2 of it
        TarWriter hostileLayer = new TarWriter().dir("./", TarWriter.Meta.of(0755)).dir("app", TarWriter.Meta.of(0755))
                .file("app/big", big, TarWriter.Meta.of(0644)).file("app/other", Images.random(701, 1000), TarWriter.Meta.of(0644));
        String hostileOriginal = OciImage.push(env.registry(), "itest/piece-hostile", "1",
                List.of(Images.base().finish(), hostileLayer.finish()), List.of("/bin/sh"));
        Path trace = env.dir.resolve("hostile-pieces-trace.json");
        Files.writeString(trace, JSON.writeValueAsString(Map.of("image", "sha256:" + "a".repeat(64), "runs", 1, "layers", List.of(),
                "chunks", List.of(d), "pieces", List.of("5"))));
        TestEnv.cli("convert", "--plain-http", "--trace-file", trace.toString(), hostileOriginal, env.registry() + "/itest/piece-hostile-traced:1")
                .orThrow("convert --trace-file");
        // ... rewritten: each piece's member replaced by the image's own bytes, with their own digest
        byte[] own = Images.random(702, PIECE);
        String hostile = HostileImages.from(env.registry(), "itest/piece-hostile-traced", "1").layer(1, l -> {
            int pieces = 0;
            for (JsonNode p : (ArrayNode) l.toc().get("prefetch")) {
                if (p.path("pieceLength").asInt() == 0) continue;
                assertEquals(d, p.get("digest").asText());
                long[] at = l.appendMember(own);
                ((ObjectNode) p).put("blobOffset", at[0]).put("blobLength", at[1]).put("pieceDigest", HostileImages.sha256(own));
                pieces++;
            }
            assertEquals(2, pieces, "pieces 0 and 2 of D expected in the hostile layer's prefetch list: " + l.toc().get("prefetch"));
        }).push("itest/piece-hostile-lazy", "1");

        // the hostile image first, through CRI's path: its pieces are fetched early and put in D's extent
        JsonNode before = env.stats().path("lazy");
        env.clientPull(hostile).orThrow("pull of the hostile image");
        long early = 0;
        for (int i = 0; i < 100 && early < 2L * PIECE; i++) {
            Thread.sleep(100);
            early = env.stats().path("lazy").path("fetchedEarlyChunkBytes").asLong() - before.path("fetchedEarlyChunkBytes").asLong();
        }
        assertEquals(2L * PIECE, early, "the hostile pieces were not fetched early:\n" + env.daemon.logTail());
        // they are in place: its own layer, the only one holding D, attests them (its own file, its own business)
        // (and /app/other, so the layer is complete once D is: its proof then runs)
        String out = sha256sumOf(hostile, "hostile-1", "cat /app/other >/dev/null; dd if=/app/big bs=65536 count=1 2>/dev/null | sha256sum");
        assertTrue(out.contains(sha(own, 0, 65536)), "the hostile pieces are not in place, so this test shows nothing: " + out);

        // then the victim: its layer holds D (absent, shared) but attests no piece of it — its reads fetch D whole
        env.clientPull(victim).orThrow("pull of the victim");
        out = sha256sumOf(victim, "victim-1", READS);
        String real0 = sha(big, 0, 65536), real8 = sha(big, 8 * 65536, 9 * 65536);
        assertTrue(out.contains(real0) && out.contains(real8) && out.contains(Images.sha256sum(big)),
                "the victim read bytes another image shipped as pieces of its chunk:\n" + out + "\n" + env.daemon.logTail());
        // D is whole now, and so the hostile layer: its stream, rebuilt from what the node serves, is not the one its
        // diff_id names (that one holds its own piece bytes), so it is quarantined — no container starts on it again
        awaitQuarantine("piece-hostile-lazy");
        Proc.Result refused = env.ctrResult("run", "--rm", "--snapshotter", "dedup", hostile, "hostile-2", "/bin/sh", "-c", READS);
        assertTrue(refused.code() != 0 && refused.out().contains("quarantined"), "a container started on the quarantined layer: " + refused.out());
        out = sha256sumOf(victim, "victim-2", READS);
        assertTrue(out.contains(real0) && out.contains(real8) && out.contains(Images.sha256sum(big)), out);

        env.ctr("images", "rm", "--sync", hostile, victim);
        assertTrue(env.stats().has("lazy"), "the daemon is not answering");
        env.assertFsckClean();
    }
}
