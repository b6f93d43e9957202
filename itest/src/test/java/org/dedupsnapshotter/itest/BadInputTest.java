package org.dedupsnapshotter.itest;

import com.google.protobuf.FieldMask;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import org.dedupsnapshotter.proto.snapshots.v1.*;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.function.Executable;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

import static org.junit.jupiter.api.Assertions.*;

/**
 * Wrong or hostile requests get the gRPC code containerd's errdefs understands and a message naming the
 * problem; the daemon keeps serving and nothing on disk changes.
 */
class BadInputTest {
    static TestEnv env;
    static SnapshotsGrpc.SnapshotsBlockingStub api;
    static final String MIB = "k".repeat(1 << 20);

    @BeforeAll
    static void start() throws Exception {
        env = TestEnv.daemonOnly();
        api = env.snapshots();
        api.prepare(PrepareSnapshotRequest.newBuilder().setKey("base-active").build());
        api.commit(CommitSnapshotRequest.newBuilder().setName("base").setKey("base-active").build());
        api.prepare(PrepareSnapshotRequest.newBuilder().setKey("child").setParent("base").build());
        api.view(ViewSnapshotRequest.newBuilder().setKey("view").setParent("base").build());
    }

    @AfterAll
    static void stop() throws Exception {
        if (env != null) env.close();
    }

    private static void expect(Status.Code code, String messagePart, Executable call) {
        StatusRuntimeException e = assertThrows(StatusRuntimeException.class, call);
        assertEquals(code, e.getStatus().getCode(), () -> "status for: " + e.getStatus());
        String d = String.valueOf(e.getStatus().getDescription());
        assertTrue(d.contains(messagePart), () -> "message \"" + d + "\" should mention \"" + messagePart + "\"");
        assertTrue(d.length() < 2000, "the message echoes a huge input back: " + d.length() + " chars");
    }

    @Test
    void everyBadRequestGetsTheRightCodeAndChangesNothing() throws Exception {
        Map<String, String> diskBefore = disk();
        List<Info> listBefore = list();

        expect(Status.Code.NOT_FOUND, "nope", () -> api.prepare(PrepareSnapshotRequest.newBuilder().setKey("x").setParent("nope").build()));
        expect(Status.Code.NOT_FOUND, "nope", () -> api.view(ViewSnapshotRequest.newBuilder().setKey("x").setParent("nope").build()));
        expect(Status.Code.ALREADY_EXISTS, "child", () -> api.prepare(PrepareSnapshotRequest.newBuilder().setKey("child").setParent("base").build()));
        expect(Status.Code.ALREADY_EXISTS, "base", () -> api.view(ViewSnapshotRequest.newBuilder().setKey("base").build()));
        expect(Status.Code.INVALID_ARGUMENT, "not a committed", () -> api.prepare(PrepareSnapshotRequest.newBuilder().setKey("x").setParent("view").build()));
        expect(Status.Code.FAILED_PRECONDITION, "not active", () -> api.commit(CommitSnapshotRequest.newBuilder().setName("c").setKey("view").build()));
        expect(Status.Code.FAILED_PRECONDITION, "not active", () -> api.commit(CommitSnapshotRequest.newBuilder().setName("c").setKey("base").build()));
        expect(Status.Code.ALREADY_EXISTS, "base", () -> api.commit(CommitSnapshotRequest.newBuilder().setName("base").setKey("child").build()));
        expect(Status.Code.FAILED_PRECONDITION, "child", () -> api.remove(RemoveSnapshotRequest.newBuilder().setKey("base").build()));
        expect(Status.Code.FAILED_PRECONDITION, "committed", () -> api.mounts(MountsRequest.newBuilder().setKey("base").build()));

        for (String unknown : List.of("unknown", "../../etc/passwd")) {
            expect(Status.Code.NOT_FOUND, "does not exist", () -> api.stat(StatSnapshotRequest.newBuilder().setKey(unknown).build()));
            expect(Status.Code.NOT_FOUND, "does not exist", () -> api.mounts(MountsRequest.newBuilder().setKey(unknown).build()));
            expect(Status.Code.NOT_FOUND, "does not exist", () -> api.remove(RemoveSnapshotRequest.newBuilder().setKey(unknown).build()));
            expect(Status.Code.NOT_FOUND, "does not exist", () -> api.usage(UsageRequest.newBuilder().setKey(unknown).build()));
            expect(Status.Code.NOT_FOUND, "does not exist", () -> api.commit(CommitSnapshotRequest.newBuilder().setName("n").setKey(unknown).build()));
            expect(Status.Code.NOT_FOUND, "does not exist", () -> api.update(UpdateSnapshotRequest.newBuilder().setInfo(Info.newBuilder().setName(unknown)).build()));
        }

        expect(Status.Code.INVALID_ARGUMENT, "empty", () -> api.prepare(PrepareSnapshotRequest.newBuilder().setKey("").build()));
        expect(Status.Code.INVALID_ARGUMENT, "NUL", () -> api.prepare(PrepareSnapshotRequest.newBuilder().setKey("a\0b").build()));
        expect(Status.Code.INVALID_ARGUMENT, "NUL", () -> api.stat(StatSnapshotRequest.newBuilder().setKey("a\0b").build()));
        expect(Status.Code.INVALID_ARGUMENT, "maximum", () -> api.prepare(PrepareSnapshotRequest.newBuilder().setKey(MIB).build()));
        expect(Status.Code.INVALID_ARGUMENT, "maximum", () -> api.stat(StatSnapshotRequest.newBuilder().setKey(MIB).build()));
        expect(Status.Code.INVALID_ARGUMENT, "maximum", () -> api.prepare(PrepareSnapshotRequest.newBuilder().setKey("x").setParent(MIB).build()));
        expect(Status.Code.INVALID_ARGUMENT, "maximum", () -> api.prepare(PrepareSnapshotRequest.newBuilder().setKey("x").putLabels("big", MIB).build()));
        expect(Status.Code.INVALID_ARGUMENT, "maximum", () -> api.prepare(PrepareSnapshotRequest.newBuilder().setKey("x").putLabels(MIB, "v").build()));
        expect(Status.Code.INVALID_ARGUMENT, "NUL", () -> api.prepare(PrepareSnapshotRequest.newBuilder().setKey("x").putLabels("a\0b", "v").build()));
        expect(Status.Code.INVALID_ARGUMENT, "maximum", () -> api.commit(CommitSnapshotRequest.newBuilder().setName("c").setKey("child").putLabels("big", MIB).build()));
        expect(Status.Code.INVALID_ARGUMENT, "maximum", () -> api.update(UpdateSnapshotRequest.newBuilder()
                .setInfo(Info.newBuilder().setName("base").putLabels("big", MIB)).build()));
        expect(Status.Code.INVALID_ARGUMENT, "parent", () -> api.update(UpdateSnapshotRequest.newBuilder()
                .setInfo(Info.newBuilder().setName("base").setParent("x")).setUpdateMask(FieldMask.newBuilder().addPaths("parent")).build()));
        expect(Status.Code.INVALID_ARGUMENT, "filter", () -> api.list(ListSnapshotsRequest.newBuilder().addFilters("labels.\"unterminated").build()).hasNext());

        assertEquals(diskBefore, disk(), "bad requests changed the disk");
        assertEquals(listBefore, list(), "bad requests changed the metadata");
        assertEquals("base", api.stat(StatSnapshotRequest.newBuilder().setKey("base").build()).getInfo().getName(), "daemon still serves");
    }

    @Test
    void keysThatLookLikePathsStayInsideTheRoot() throws Exception {
        Map<String, String> diskBefore = disk();
        String key = "../../../../../tmp/dedup-escape-" + ProcessHandle.current().pid();
        var mounts = api.prepare(PrepareSnapshotRequest.newBuilder().setKey(key).setParent("base").build()).getMountsList();
        for (var m : mounts)
            for (String o : m.getOptionsList())
                if (o.startsWith("upperdir=") || o.startsWith("lowerdir=") || o.startsWith("workdir="))
                    for (String p : o.substring(o.indexOf('=') + 1).split(":"))
                        assertTrue(Path.of(p).normalize().startsWith(env.dedupRoot), "mount path outside the root: " + p);
        assertFalse(Files.exists(Path.of("/tmp/dedup-escape-" + ProcessHandle.current().pid())));
        assertEquals(key, api.stat(StatSnapshotRequest.newBuilder().setKey(key).build()).getInfo().getName());
        api.remove(RemoveSnapshotRequest.newBuilder().setKey(key).build());
        assertEquals(diskBefore, disk());
    }

    /** Every path under the daemon's root except the database files (which SQLite may touch on reads). */
    private static Map<String, String> disk() throws Exception {
        Map<String, String> out = new TreeMap<>();
        try (var paths = Files.walk(env.dedupRoot.resolve("snapshots"))) {
            for (Path p : paths.toList())
                out.put(env.dedupRoot.relativize(p).toString(), Files.isRegularFile(p) ? Long.toString(Files.size(p)) : "dir");
        }
        out.put("mounts", env.layerMounts().toString());
        return out;
    }

    private static List<Info> list() {
        List<Info> out = new ArrayList<>();
        api.list(ListSnapshotsRequest.newBuilder().build()).forEachRemaining(r -> out.addAll(r.getInfoList()));
        return out;
    }
}
