package org.dedupsnapshotter.mount;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * The page cache of readings, counted by the kernel for them alone: child processes in a memory cgroup of their own
 * read files, and the cgroup's page-cache charge is the figure (pages dropped later, as a trimmer does, leave it).
 * /proc/meminfo's Cached moves with everything else on the machine: a tree deleted elsewhere once took 46 MiB off a
 * measurement.
 */
final class ChargedPageCache implements AutoCloseable {
    private final Path cgroup;
    private final String key;

    private ChargedPageCache(Path cgroup, String key) {
        this.cgroup = cgroup;
        this.key = key;
    }

    /** A new, empty memory cgroup (v1's memory controller, or v2's where that is mounted). */
    static ChargedPageCache create() throws IOException {
        Path v1 = Path.of("/sys/fs/cgroup/memory"), v2 = Path.of("/sys/fs/cgroup");
        boolean isV1 = Files.isDirectory(v1);
        if (!isV1 && !Files.readString(v2.resolve("cgroup.subtree_control")).contains("memory"))
            fail("no memory cgroup controller to count a reading's page cache");
        String name = "dedup-test-" + ProcessHandle.current().pid() + "-" + System.nanoTime();
        return new ChargedPageCache(Files.createDirectory((isV1 ? v1 : v2).resolve(name)), isV1 ? "cache " : "file ");
    }

    /** Reads every regular file under dir in a child process of this cgroup. */
    void readAll(Path dir) throws IOException, InterruptedException {
        Process p = new ProcessBuilder("sh", "-c", "echo $$ > \"$1/cgroup.procs\" && exec find \"$2\" -type f -exec cat {} +",
                "sh", cgroup.toString(), dir.toString())
                .redirectOutput(ProcessBuilder.Redirect.DISCARD).redirectError(ProcessBuilder.Redirect.INHERIT).start();
        assertEquals(0, p.waitFor(), "reading " + dir);
    }

    /** The page-cache bytes charged to this cgroup now. */
    long bytes() throws IOException {
        for (String l : Files.readAllLines(cgroup.resolve("memory.stat")))
            if (l.startsWith(key)) return Long.parseLong(l.substring(key.length()).strip());
        return fail("no '" + key.strip() + "' in " + cgroup.resolve("memory.stat"));
    }

    /** Page-cache bytes a child process charged reading every regular file under dir. */
    static long ofReadingAll(Path dir) throws IOException, InterruptedException {
        try (ChargedPageCache c = create()) {
            c.readAll(dir);
            return c.bytes();
        }
    }

    @Override
    public void close() throws IOException {
        Files.delete(cgroup); // its readers have exited; what they charged moves to the parent
    }
}
