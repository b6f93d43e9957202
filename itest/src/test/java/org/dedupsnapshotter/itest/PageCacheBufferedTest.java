package org.dedupsnapshotter.itest;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * Config poolReads "buffered" (decision 68): layers are mounted without directio, read the pool through its page
 * cache, and the daemon's trimmer drops the pool's copy after the reads, so a file read through a layer is still cached
 * once; stats says which.
 */
class PageCacheBufferedTest {
    static TestEnv env;

    @BeforeAll
    static void start() throws Exception {
        env = TestEnv.fullWithConfig("{\"poolReads\": \"buffered\"}");
    }

    @AfterAll
    static void stop() throws Exception {
        if (env != null) env.close();
    }

    @Test
    void layersReadThePoolBufferedAndTheFileIsCachedOnce() throws Exception {
        PageCacheTest.readingAFileThroughALayerCachesItOnce(env, "buffered");
    }
}
