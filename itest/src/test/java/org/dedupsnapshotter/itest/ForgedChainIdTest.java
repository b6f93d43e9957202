package org.dedupsnapshotter.itest;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.dedupsnapshotter.lazy.registry.ImageRef;
import org.dedupsnapshotter.lazy.registry.RegistryClient;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.time.Duration;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * An image whose config claims another image's diff_ids (so its layers' chain ids are the victim's), pulled lazily
 * first: the victim, pulled next through `ctr images pull` and through CRI's path, runs its own files; once the
 * forgery's data is on the node it is proven not to be what it claims and quarantined (no container starts on it,
 * dedupctl ls says why); removing it cures the node, and the victim's own lazy layer is then proven.
 */
class ForgedChainIdTest {
    static final ObjectMapper JSON = new ObjectMapper();
    static TestEnv env;
    static String victim, forged, bystander;

    @BeforeAll
    static void start() throws Exception {
        // background fetching at once, so a lazy layer is complete (and proven) seconds after its pull
        env = TestEnv.fullWithConfig("{\"lazy\": {\"readDeadline\": \"10s\", \"prefetchDelay\": \"0s\"}}");
        String victimPlain = OciImage.push(env.registry(), "itest/victim", "1",
                List.of(Images.base().file("who", "victim\n", TarWriter.Meta.of(0644)).finish()), List.of("/bin/cat", "/who"));
        String forgerPlain = OciImage.push(env.registry(), "itest/forger", "1",
                List.of(Images.base().file("who", "forger\n", TarWriter.Meta.of(0644)).file("evil", Images.random(9, 300_000), TarWriter.Meta.of(0755)).finish()),
                List.of("/bin/cat", "/who"));
        victim = env.registry() + "/itest/victim-lazy:1";
        String forger = env.registry() + "/itest/forger-lazy:1";
        for (String[] c : List.of(new String[] {victimPlain, victim}, new String[] {forgerPlain, forger}))
            Proc.run(Duration.ofMinutes(5), List.of(TestEnv.TOP.resolve("bin/dedupctl").toString(), "convert", "--plain-http", c[0], c[1])).orThrow("convert");
        forged = claimDiffIds(forger, victim, "forged");
        bystander = env.registry() + "/itest/bystander-lazy:1";
        Proc.run(Duration.ofMinutes(5), List.of(TestEnv.TOP.resolve("bin/dedupctl").toString(), "convert", "--plain-http",
                OciImage.push(env.registry(), "itest/bystander", "1", List.of(Images.base().file("who", "bystander\n", TarWriter.Meta.of(0644)).finish()),
                        List.of("/bin/cat", "/who")), bystander)).orThrow("convert");
    }

    @AfterAll
    static void stop() throws Exception {
        if (env != null) env.close();
    }

    @Test
    void theRealImageRunsItsOwnFilesAndTheForgeryIsQuarantined() throws Exception {
        env.criPull("bystander", bystander).orThrow("pull of an image before the forgery");
        assertEquals("bystander", run("bystander", bystander, "b1").strip());
        Pull first = env.criPull("forger", forged).orThrow("pull of the forged image");
        assertTrue(first.layersDownloaded() == 0, "the forged image was not pulled lazily: " + first.out());

        // the victim, next: through ctr (containerd's unpacker with the layers' annotations) and through CRI's path
        env.ctr("images", "pull", "--plain-http", "--snapshotter", "dedup", victim);
        assertEquals("victim", run(TestEnv.NS, victim, "v1").strip(), env.daemon.logTail());
        env.criPull("k8s.io", victim).orThrow("CRI pull of the victim");
        assertEquals("victim", run("k8s.io", victim, "v2").strip(), env.daemon.logTail());

        // the forgery's data arrives in the background; its rebuilt stream does not give the diff_id it claims
        JsonNode layer = awaitProof("quarantined", "forger");
        assertTrue(layer.path("proofNote").asText().contains("not " + layer.path("labels").path("containerd.io/snapshot.ref").asText()), layer.toString());
        Proc.Result refused = env.ctrIn("forger", "run", "--rm", "--snapshotter", "dedup", forged, "f1");
        assertNotEquals(0, refused.code(), "a container started on a quarantined layer: " + refused.out());
        assertTrue(refused.out().contains("quarantined"), refused.out());
        assertTrue(env.dedupctl("ls").orThrow("ls").out().contains("quarantined"), "dedupctl ls does not show the quarantine");
        assertEquals("victim", run(TestEnv.NS, victim, "v3").strip(), "the victim stopped running after the quarantine");
        env.assertFsckClean();

        // removing the forged image cures the node: the victim then pulls lazily and its own layer is proven
        env.ctrIn("forger", "images", "rm", "--sync", forged).orThrow("rm forged");
        env.criPull("fresh", victim).orThrow("lazy pull of the victim");
        awaitProof("proven", "victim");
        env.daemon.logTail().lines().filter(l -> l.contains(") proven: diff_id")).forEach(l -> System.out.println("proof cost: " + l)); // for the record
        assertEquals("victim", run("fresh", victim, "v4").strip(), env.daemon.logTail());
        assertEquals("bystander", run("bystander", bystander, "b2").strip(), "the image pulled before the forgery reads other bytes now");
        env.assertFsckClean();
    }

    /** Waits for a lazy layer of the named image repository to reach a proof state; returns its listing. */
    static JsonNode awaitProof(String state, String repo) throws Exception {
        long until = System.nanoTime() + Duration.ofSeconds(90).toNanos();
        JsonNode last = null;
        while (System.nanoTime() < until) {
            for (JsonNode s : JSON.readTree(env.dedupctl("ls", "--json").orThrow("ls").out())) {
                if (!s.has("proof")) continue;
                last = s;
                if (s.path("labels").toString().contains("itest/" + repo + "-lazy") || s.path("labels").toString().contains("itest/" + repo))
                    if (s.path("proof").asText().equals(state)) return s;
            }
            Thread.sleep(300);
        }
        throw new AssertionError("no lazy layer of " + repo + " became " + state + "; last: " + last + "\n" + env.daemon.logTail());
    }



    static String run(String namespace, String ref, String name) throws Exception {
        return env.ctrIn(namespace, "run", "--rm", "--snapshotter", "dedup", ref, name).orThrow("ctr run " + ref).out();
    }

    /** Pushes image's manifest under a new tag with a config whose diff_ids are those of victim's config. */
    static String claimDiffIds(String image, String victimRef, String tag) throws Exception {
        ImageRef ref = ImageRef.parse(image), v = ImageRef.parse(victimRef);
        RegistryClient reg = RegistryClient.forRef(ref, true);
        ObjectNode manifest = (ObjectNode) JSON.readTree(reg.manifest(ref.repository(), ref.reference()).body());
        JsonNode victimManifest = JSON.readTree(reg.manifest(v.repository(), v.reference()).body());
        ObjectNode config = (ObjectNode) JSON.readTree(reg.blob(ref.repository(), manifest.path("config").path("digest").asText()));
        JsonNode victimConfig = JSON.readTree(reg.blob(v.repository(), victimManifest.path("config").path("digest").asText()));
        ArrayNode claimed = (ArrayNode) victimConfig.path("rootfs").path("diff_ids");
        assertEquals(claimed.size(), config.path("rootfs").path("diff_ids").size());
        ((ObjectNode) config.path("rootfs")).set("diff_ids", claimed);
        byte[] cfg = JSON.writeValueAsBytes(config);
        reg.pushBlob(ref.repository(), cfg, 1 << 20);
        ObjectNode cd = (ObjectNode) manifest.path("config");
        cd.put("digest", RegistryClient.sha256(cfg));
        cd.put("size", cfg.length);
        reg.pushManifest(ref.repository(), tag, manifest.path("mediaType").asText(RegistryClient.OCI_MANIFEST), JSON.writeValueAsBytes(manifest));
        return ref.host() + "/" + ref.repository() + ":" + tag;
    }
}
