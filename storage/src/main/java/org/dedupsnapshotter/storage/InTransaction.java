package org.dedupsnapshotter.storage;

/**
 * Work done after a change is written but before its transaction commits: if it throws, the change is rolled
 * back, so the database never records what the disk does not hold.
 */
@FunctionalInterface
public interface InTransaction {
    InTransaction NOTHING = s -> {};

    void run(Snapshot snapshot) throws Exception;
}
