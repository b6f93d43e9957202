package org.dedupsnapshotter.storage;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;

/** A MetaStore on a fresh SQLite file per test, reopened on demand. */
abstract class StoreFixture {
    @TempDir
    Path dir;
    MetaStore store;

    @BeforeEach
    void open() { store = MetaStore.open(dir.resolve("m.db")); }

    @AfterEach
    void close() { store.close(); }

    void reopen() {
        store.close();
        store = MetaStore.open(dir.resolve("m.db"));
    }
}
