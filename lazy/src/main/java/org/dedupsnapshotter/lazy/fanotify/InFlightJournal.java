package org.dedupsnapshotter.lazy.fanotify;

import java.io.IOException;
import java.nio.ByteOrder;
import java.nio.MappedByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.BitSet;
import java.util.List;

/**
 * The events the listener has read but not yet answered, in a memory-mapped file: a daemon killed with -9 leaves
 * its readers blocked on those events, and the group (kept alive by the holder) matches answers by the event's
 * fd number, so the next daemon fills each recorded range and answers it (verified on this kernel). The file
 * lives in the page cache: kill -9 loses nothing, and after a reboot the events are gone anyway.
 *
 * A slot is written before the fill starts and cleared after the answer but before the event's fd is closed,
 * so a recorded fd number can never belong to a newer event.
 */
final class InFlightJournal implements AutoCloseable {
    static final int SLOTS = 8192;
    private static final int HEADER = 64, SLOT = 24, FREE = -1;

    /** A recorded event: its fd number in the recording daemon, and the pool range its reader waits for. */
    record Pending(int fd, long offset, long count) {}

    private final FileChannel channel;
    private final MappedByteBuffer map;
    private final BitSet used = new BitSet(SLOTS);

    private InFlightJournal(FileChannel channel, MappedByteBuffer map) {
        this.channel = channel;
        this.map = map;
    }

    static InFlightJournal open(Path file) throws IOException {
        FileChannel ch = FileChannel.open(file, StandardOpenOption.CREATE, StandardOpenOption.READ, StandardOpenOption.WRITE);
        long size = HEADER + (long) SLOTS * SLOT;
        boolean fresh = ch.size() != size;
        if (fresh) ch.truncate(0);
        MappedByteBuffer m = ch.map(FileChannel.MapMode.READ_WRITE, 0, size);
        m.order(ByteOrder.LITTLE_ENDIAN);
        if (fresh) for (int i = 0; i < SLOTS; i++) m.putInt(HEADER + i * SLOT, FREE);
        return new InFlightJournal(ch, m);
    }

    /** What a previous daemon left recorded. */
    synchronized List<Pending> pending() {
        List<Pending> out = new ArrayList<>();
        for (int i = 0; i < SLOTS; i++) {
            int at = HEADER + i * SLOT;
            int fd = map.getInt(at);
            if (fd != FREE) out.add(new Pending(fd, map.getLong(at + 8), map.getLong(at + 16)));
        }
        return out;
    }

    /** The highest event fd number ever recorded here (bounds the sweep for events read but not recorded). */
    synchronized int highestFd() { return map.getInt(0); }

    synchronized void clearAll() {
        for (int i = 0; i < SLOTS; i++) map.putInt(HEADER + i * SLOT, FREE);
        used.clear();
    }

    /** Records an event; returns its slot, or -1 when every slot is taken (the event is then served unrecorded). */
    synchronized int record(int fd, long offset, long count) {
        int slot = used.nextClearBit(0);
        if (slot >= SLOTS) return -1;
        used.set(slot);
        int at = HEADER + slot * SLOT;
        map.putLong(at + 8, offset);
        map.putLong(at + 16, count);
        map.putInt(at, fd); // last: the slot counts once it names an fd
        if (fd > map.getInt(0)) map.putInt(0, fd);
        return slot;
    }

    synchronized void clear(int slot) {
        if (slot < 0) return;
        map.putInt(HEADER + slot * SLOT, FREE);
        used.clear(slot);
    }

    @Override
    public void close() throws IOException { channel.close(); }
}
