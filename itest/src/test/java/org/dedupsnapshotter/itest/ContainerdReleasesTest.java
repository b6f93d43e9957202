package org.dedupsnapshotter.itest;

import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

/**
 * The smoke set on the containerd releases other than the primary one (the whole end-to-end suite runs on that):
 * containerd 1.6 (config v2, the client-side pull with CRI's labels) and every other 2.x built (config v3, the
 * transfer service). On each: a plain image pulled and run, a converted one pulled lazily (no layer blob
 * downloaded) and run reading right bytes, and a daemon restart (kill -9) with a container running on it, after
 * which both images still run and the container still reads right bytes.
 */
class ContainerdReleasesTest {
    static List<Containerd> releases() {
        List<Containerd> out = new ArrayList<>(Containerd.v2());
        out.add(Containerd.V1_6);
        out.remove(Containerd.primary());
        return out;
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("releases")
    void pullRunLazyPullAndRestart(Containerd release) throws Exception {
        try (TestEnv env = TestEnv.fullOn(release)) {
            assertTrue(env.ctr("version").contains(release.version()), env.ctr("version"));
            String plain = OciImage.push(env.registry(), "itest/smoke", "1", Images.fidelity(), List.of("/bin/sh"));
            String big = Images.sha256sum(Images.BIG);
            // data of its own: chunks the plain image brought would be in the pool already, and not fetched
            byte[] data = Images.random(18, 9 * 1024 * 1024 + 5);
            String lazySource = OciImage.push(env.registry(), "itest/smoke-data", "1", List.of(Images.base().finish(),
                    new TarWriter().dir("./", TarWriter.Meta.of(0755)).dir("data", TarWriter.Meta.of(0755))
                            .file("data/blob", data, TarWriter.Meta.of(0644)).file("hello", "lazy hello\n", TarWriter.Meta.of(0644)).finish()),
                    List.of("/bin/sh"));
            String lazy = Images.convert(lazySource, env.registry() + "/itest/smoke-lazy:1");

            env.ctr("images", "pull", "--plain-http", "--snapshotter", "dedup", plain);
            String out = env.ctr("run", "--rm", "--snapshotter", "dedup", plain, "smoke-plain", "/bin/sh", "-c", "sha256sum /data/big; cat /etc/hello");
            assertTrue(out.contains(big) && out.contains("hello again from layer 3"), out);

            Pull pull = env.criPull(TestEnv.NS, lazy).orThrow("lazy pull");
            assertEquals(0, pull.layersDownloaded(), "the converted image was not pulled lazily: " + pull.out());
            long fetchedBefore = chunkBytesFetched(env);
            env.ctr("run", "-d", "--snapshotter", "dedup", lazy, "smoke-lazy", "/bin/sleep", "600");
            try {
                assertTrue(exec(env, "smoke-lazy", "sha256sum /data/blob").contains(Images.sha256sum(data)), "lazy read");
                assertTrue(chunkBytesFetched(env) > fetchedBefore, "nothing was fetched for the lazy read: " + env.stats());

                env.killDaemon();
                // what was fetched reads without the daemon (an absent chunk would wait for its restart)
                assertTrue(exec(env, "smoke-lazy", "sha256sum /data/blob").contains(Images.sha256sum(data)), "read while the daemon is down");
                env.startDaemon();
                env.awaitContainerdReconnect("smoke-lazy");
                assertTrue(exec(env, "smoke-lazy", "cat /hello").contains("lazy hello"), "read after the restart");
                out = env.ctr("run", "--rm", "--snapshotter", "dedup", plain, "smoke-plain-2", "/bin/cat", "/etc/hello");
                assertTrue(out.contains("hello again from layer 3"), out);
            } finally {
                env.ctrResult("tasks", "kill", "-s", "SIGKILL", "smoke-lazy");
                for (int i = 0; i < 50 && env.ctrResult("tasks", "rm", "-f", "smoke-lazy").code() != 0; i++) Thread.sleep(100);
                env.ctrResult("containers", "rm", "smoke-lazy");
            }
            env.assertFsckClean();
        }
    }

    /** Chunk bytes the lazy loader fetched, whatever asked for them (a reader, the prefetcher, a trace). */
    private static long chunkBytesFetched(TestEnv env) throws Exception {
        var lazy = env.stats().path("lazy");
        return lazy.path("fetchedDemandChunkBytes").asLong() + lazy.path("fetchedPrefetchChunkBytes").asLong() + lazy.path("fetchedEarlyChunkBytes").asLong();
    }

    private static String exec(TestEnv env, String container, String cmd) throws Exception {
        return env.ctr("tasks", "exec", "--exec-id", "x" + System.nanoTime(), container, "/bin/sh", "-c", cmd);
    }
}
