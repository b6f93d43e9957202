package org.dedupsnapshotter.itest;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.locks.ReentrantLock;

import static org.junit.jupiter.api.Assertions.*;

/**
 * 50 kill -9s of the daemon at random moments while two clients pull and remove images through containerd in
 * parallel. After every restart: fsck --verify-data is clean and every image that was fully pulled reads back
 * byte-exact.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class KillLoopTest {
    static final int MIB = 1024 * 1024, KILLS = Integer.getInteger("dedup.kills", 50), IMAGES = 4;
    TestEnv env;
    final List<String> refs = new ArrayList<>();
    final List<Map<String, byte[]>> contents = new ArrayList<>();

    /** The daemon under test (CompactingKillLoopTest: one that compacts its layers whenever it goes quiet). */
    TestEnv newEnv() throws Exception {
        return TestEnv.full();
    }

    /** After the loop: what the variant must also have done for the loop to count. */
    void checkAfterLoop() throws Exception { }

    /**
     * Milliseconds the clients stay quiet before kill k (0: they keep going): CompactingKillLoopTest lets the daemon
     * go idle before some kills, so those land in its idle-time compaction passes.
     */
    long quietBeforeKill(int k, Random rnd) { return 0; }

    @BeforeAll
    void start() throws Exception {
        env = newEnv();
        byte[] base = Images.base().finish();
        byte[] common = Images.random(20, 6 * MIB + 5);
        byte[][] pairs = {Images.random(21, 3 * MIB + 1), Images.random(22, 3 * MIB + 2)};
        for (int i = 0; i < IMAGES; i++) {
            Map<String, byte[]> files = new LinkedHashMap<>();
            files.put("data/common", common);
            files.put("data/pair", pairs[i % 2]);
            files.put("data/own", Images.random(30 + i, 5 * MIB + i));
            TarWriter t = new TarWriter();
            TarWriter.Meta dir = TarWriter.Meta.of(0755).mtime(TarWriter.T0 + i), file = TarWriter.Meta.of(0644).mtime(TarWriter.T0 + i);
            t.dir("./", dir).dir("data", dir);
            files.forEach((n, d) -> t.file(n, d, file));
            refs.add(OciImage.push(env.registry(), "itest/kill-" + i, "1", List.of(base, t.finish()), List.of("/bin/sh")));
            contents.add(files);
        }
    }

    @AfterAll
    void stop() throws Exception {
        if (env != null) env.close();
    }

    @Test
    void randomKillsDuringParallelPullsAndRemovals() throws Exception {
        Set<Integer> pulled = ConcurrentHashMap.newKeySet();
        ReentrantLock[] imageLocks = new ReentrantLock[IMAGES];
        for (int i = 0; i < IMAGES; i++) imageLocks[i] = new ReentrantLock();
        AtomicBoolean stop = new AtomicBoolean(), paused = new AtomicBoolean();
        AtomicInteger busy = new AtomicInteger(), pulls = new AtomicInteger(), removals = new AtomicInteger(), failures = new AtomicInteger();
        Object gate = new Object();

        Runnable worker = () -> {
            Random rnd = new Random(Thread.currentThread().threadId());
            while (!stop.get()) {
                synchronized (gate) {
                    while (paused.get() && !stop.get()) {
                        try {
                            gate.wait(100);
                        } catch (InterruptedException e) {
                            return;
                        }
                    }
                    busy.incrementAndGet();
                }
                int i = rnd.nextInt(IMAGES);
                try {
                    if (!imageLocks[i].tryLock()) continue;
                    try {
                        if (!pulled.contains(i)) {
                            if (env.ctrResult("images", "pull", "--plain-http", "--snapshotter", "dedup", refs.get(i)).code() == 0) {
                                pulled.add(i);
                                pulls.incrementAndGet();
                            } else {
                                failures.incrementAndGet();
                            }
                        } else {
                            pulled.remove(i);
                            if (env.ctrResult("images", "rm", "--sync", refs.get(i)).code() == 0) removals.incrementAndGet();
                            else failures.incrementAndGet();
                        }
                    } finally {
                        imageLocks[i].unlock();
                    }
                } catch (Exception e) {
                    failures.incrementAndGet();
                } finally {
                    busy.decrementAndGet();
                }
            }
        };
        List<Thread> workers = List.of(Thread.ofPlatform().start(worker), Thread.ofPlatform().start(worker));
        Random rnd = new Random(42);
        try {
            for (int k = 1; k <= KILLS; k++) {
                Thread.sleep(200 + rnd.nextInt(1800));
                long quiet = quietBeforeKill(k, rnd);
                if (quiet > 0) {
                    paused.set(true);
                    while (busy.get() > 0) Thread.sleep(20);
                    Thread.sleep(quiet);
                }
                env.killDaemon();
                paused.set(true);
                while (busy.get() > 0) Thread.sleep(50); // their calls fail fast while the daemon is down
                env.startDaemon();
                awaitContainerd(k);
                env.assertFsckClean();
                for (int i : pulled) assertEquals(expected(i), actual(i), "image " + i + " after kill " + k);
                synchronized (gate) {
                    paused.set(false);
                    gate.notifyAll();
                }
            }
        } finally {
            stop.set(true);
            synchronized (gate) {
                gate.notifyAll();
            }
            for (Thread t : workers) t.join(120_000);
        }
        System.out.printf("kill loop: %d kills, %d pulls, %d removals, %d operations cut short%n", KILLS, pulls.get(), removals.get(), failures.get());
        assertTrue(pulls.get() >= KILLS / 5 && removals.get() >= KILLS / 10, "too little work happened between kills: " + pulls + " pulls, " + removals + " removals");
        env.assertFsckClean();
        for (int i : pulled) assertEquals(expected(i), actual(i), "image " + i + " at the end");
        checkAfterLoop();
    }

    /** containerd redials us with backoff; a Prepare through it proves it is back. */
    private void awaitContainerd(int k) throws Exception {
        String key = "probe-" + k;
        for (int tries = 0; ; tries++) {
            if (env.ctrResult("snapshots", "--snapshotter", "dedup", "prepare", key).code() == 0) break;
            if (tries > 150) fail("containerd did not reconnect to the daemon after kill " + k);
            Thread.sleep(200);
        }
        env.ctr("snapshots", "--snapshotter", "dedup", "rm", key);
    }

    private Map<String, String> expected(int i) throws Exception {
        Map<String, String> out = new LinkedHashMap<>();
        for (var e : contents.get(i).entrySet()) out.put(e.getKey(), Images.sha256sum(e.getValue()));
        return out;
    }

    Map<String, String> actual(int i) throws Exception {
        Path target = Files.createDirectories(env.dir.resolve("verify-" + i));
        try (AutoCloseable mounted = env.mountImage("dedup", refs.get(i), target)) {
            Map<String, String> out = new LinkedHashMap<>();
            for (String name : contents.get(i).keySet()) out.put(name, TreeListing.sha256(target.resolve(name)));
            return out;
        }
    }
}
