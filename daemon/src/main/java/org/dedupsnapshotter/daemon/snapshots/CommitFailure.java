package org.dedupsnapshotter.daemon.snapshots;

import org.dedupsnapshotter.api.Names;
import org.dedupsnapshotter.api.SnapshotException;
import org.dedupsnapshotter.erofs.ErofsBuilder;
import org.dedupsnapshotter.storage.PoolFullException;
import org.dedupsnapshotter.sys.Errno;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Path;

/** What containerd is told when a commit fails: a full pool or disk is RESOURCE_EXHAUSTED, anything else internal. */
final class CommitFailure {
    private CommitFailure() {}

    static RuntimeException of(String key, IOException e, Path root) {
        String what = "commit of " + Names.shorten(key);
        if (e instanceof PoolFullException || e instanceof ErofsBuilder.NoSpaceException)
            return new SnapshotException(SnapshotException.Code.RESOURCE_EXHAUSTED, what + ": " + e.getMessage(), e);
        if (isNoSpace(e))
            return new SnapshotException(SnapshotException.Code.RESOURCE_EXHAUSTED, what + ": no space left on the device under " + root + ": " + e.getMessage(), e);
        return new UncheckedIOException(what + " failed: " + e.getMessage(), e);
    }

    private static boolean isNoSpace(Throwable e) {
        for (Throwable t = e; t != null; t = t.getCause()) {
            if (t instanceof Errno er && er.errno() == Errno.ENOSPC) return true;
            if (t.getMessage() != null && t.getMessage().contains("No space left on device")) return true;
        }
        return false;
    }
}
