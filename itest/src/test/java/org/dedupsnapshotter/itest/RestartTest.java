package org.dedupsnapshotter.itest;

import org.dedupsnapshotter.proto.snapshots.v1.Info;
import org.dedupsnapshotter.proto.snapshots.v1.ListSnapshotsRequest;
import org.dedupsnapshotter.proto.snapshots.v1.MountsRequest;
import org.dedupsnapshotter.proto.snapshots.v1.StatSnapshotRequest;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

/**
 * The daemon dies (kill -9) or is stopped (SIGTERM) while a container runs on it: the container keeps
 * reading its files while the daemon is gone, and after a restart Stat, Mounts and List answer exactly as
 * before and new pulls work.
 */
class RestartTest {
    static TestEnv env;
    static String ref;
    static final byte[] BLOB = Images.random(7, 8 * 1024 * 1024 + 17);

    @BeforeAll
    static void start() throws Exception {
        env = TestEnv.full();
        ref = OciImage.push(env.registry(), "itest/restart", "1", List.of(Images.base().finish(),
                new TarWriter().dir("./", TarWriter.Meta.of(0755)).dir("data", TarWriter.Meta.of(0755))
                        .file("data/blob", BLOB, TarWriter.Meta.of(0644)).finish()), List.of("/bin/sh"));
        env.ctr("images", "pull", "--plain-http", "--snapshotter", "dedup", ref);
    }

    @AfterAll
    static void stop() throws Exception {
        if (env != null) env.close();
    }

    @ParameterizedTest
    @ValueSource(strings = {"KILL", "TERM"})
    void runningContainerSurvivesDaemonRestart(String how) throws Exception {
        String name = "restart-" + how.toLowerCase();
        String expected = Images.sha256sum(BLOB);
        env.ctr("run", "-d", "--snapshotter", "dedup", ref, name, "/bin/sleep", "600");
        try {
            List<Info> before = listAll();
            String key = before.stream().map(Info::getName).filter(n -> n.endsWith("/" + name)).findFirst().orElseThrow();
            var mountsBefore = env.snapshots().mounts(MountsRequest.newBuilder().setKey(key).build()).getMountsList();
            var statBefore = env.snapshots().stat(StatSnapshotRequest.newBuilder().setKey(key).build()).getInfo();

            if (how.equals("KILL")) {
                env.killDaemon();
            } else {
                int code = env.stopDaemon();
                assertNotEquals(137, code, "the daemon ignored SIGTERM and had to be killed");
            }
            // no daemon now: the container still reads every byte of its image
            assertTrue(exec(name, "sha256sum /data/blob").contains(expected), "read while the daemon is down");

            env.startDaemon();
            var reconnect = env.awaitContainerdReconnect(name);
            assertTrue(reconnect.toSeconds() < 10, "containerd took " + reconnect + " to reconnect");
            assertEquals(before, listAll(), "List after restart");
            assertEquals(mountsBefore, env.snapshots().mounts(MountsRequest.newBuilder().setKey(key).build()).getMountsList(), "Mounts after restart");
            assertEquals(statBefore, env.snapshots().stat(StatSnapshotRequest.newBuilder().setKey(key).build()).getInfo(), "Stat after restart");
            assertTrue(exec(name, "sha256sum /data/blob").contains(expected), "read after the restart");

            // and the restarted daemon takes new images
            String next = OciImage.push(env.registry(), "itest/after-restart", how.toLowerCase(), List.of(Images.base().finish(),
                    new TarWriter().dir("./", TarWriter.Meta.of(0755)).file("hello", "after " + how + "\n", TarWriter.Meta.of(0644)).finish()),
                    List.of("/bin/sh"));
            env.ctr("images", "pull", "--plain-http", "--snapshotter", "dedup", next);
            String out = env.ctr("run", "--rm", "--snapshotter", "dedup", next, name + "-next", "/bin/cat", "/hello");
            assertTrue(out.contains("after " + how), out);
        } finally {
            env.ctrResult("tasks", "kill", "-s", "SIGKILL", name);
            for (int i = 0; i < 50 && env.ctrResult("tasks", "rm", "-f", name).code() != 0; i++) Thread.sleep(100);
            env.ctrResult("containers", "rm", name);
            // containerd drops the container's snapshot in its background GC: wait, so the next test starts still
            for (int i = 0; i < 100 && listAll().stream().anyMatch(in -> in.getName().endsWith("/" + name)); i++) Thread.sleep(100);
        }
    }

    private static String exec(String container, String cmd) throws Exception {
        return env.ctr("tasks", "exec", "--exec-id", "x" + System.nanoTime(), container, "/bin/sh", "-c", cmd);
    }

    private static List<Info> listAll() {
        List<Info> out = new ArrayList<>();
        env.snapshots().list(ListSnapshotsRequest.newBuilder().build()).forEachRemaining(r -> out.addAll(r.getInfoList()));
        out.sort((a, b) -> a.getName().compareTo(b.getName()));
        return out;
    }
}
