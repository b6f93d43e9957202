package org.dedupsnapshotter.daemon;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;

/**
 * An exclusive lock on the root (flock on root/lock, holding our pid), so two daemons never share one root.
 * The kernel releases it when the process dies, however it dies: no stale lock after kill -9.
 */
final class RootLock implements AutoCloseable {
    private final FileChannel channel;
    private final FileLock lock;

    private RootLock(FileChannel channel, FileLock lock) {
        this.channel = channel;
        this.lock = lock;
    }

    static RootLock acquire(Path file, long pid) throws IOException {
        FileChannel ch = FileChannel.open(file, StandardOpenOption.CREATE, StandardOpenOption.READ, StandardOpenOption.WRITE);
        FileLock l = ch.tryLock();
        if (l == null) {
            ByteBuffer buf = ByteBuffer.allocate(32);
            ch.read(buf, 0);
            String other = new String(buf.array(), 0, buf.position(), StandardCharsets.US_ASCII).trim();
            ch.close();
            throw new IOException("another dedup-snapshotter" + (other.isEmpty() ? "" : " (pid " + other + ")")
                    + " is running with root " + file.getParent() + "; stop it first");
        }
        ch.truncate(0);
        ch.write(ByteBuffer.wrap((pid + "\n").getBytes(StandardCharsets.US_ASCII)), 0);
        ch.force(false);
        return new RootLock(ch, l);
    }

    @Override
    public void close() throws IOException {
        lock.release();
        channel.close();
    }
}
