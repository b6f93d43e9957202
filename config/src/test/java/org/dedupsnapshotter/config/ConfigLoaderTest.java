package org.dedupsnapshotter.config;

import org.junit.jupiter.api.Test;

import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.*;

class ConfigLoaderTest {
    @Test
    void emptyObjectGivesDefaults() throws Exception {
        assertEquals(Config.defaults(), ConfigLoader.parse("{}", "t"));
    }

    @Test
    void valuesOverrideDefaults() throws Exception {
        Config c = ConfigLoader.parse("{\"root\": \"/srv/d\", \"chunkSize\": \"1MiB\", \"mountBackend\": \"loop\"}", "t");
        assertEquals(Path.of("/srv/d"), c.root());
        assertEquals(1 << 20, c.chunkSize());
        assertEquals("loop", c.mountBackend());
        assertEquals(65536, ConfigLoader.parse("{\"chunkSize\": 65536}", "t").chunkSize());
    }

    @Test
    void errorsNameTheKeyAndTheExpectedForm() {
        assertTrue(assertThrows(ConfigException.class, () -> ConfigLoader.parse("{\"rooot\": \"/x\"}", "t")).getMessage().contains("unknown key \"rooot\""));
        assertTrue(assertThrows(ConfigException.class, () -> ConfigLoader.parse("{\"root\": \"relative\"}", "t")).getMessage().contains("\"root\" must be an absolute path"));
        assertTrue(assertThrows(ConfigException.class, () -> ConfigLoader.parse("{\"chunkSize\": \"3MiB\"}", "t")).getMessage().contains("\"chunkSize\" must be a power of two"));
        assertTrue(assertThrows(ConfigException.class, () -> ConfigLoader.parse("{\"chunkSize\": \"lots\"}", "t")).getMessage().contains("\"chunkSize\" must be a positive size"));
        assertTrue(assertThrows(ConfigException.class, () -> ConfigLoader.parse("{\"mountBackend\": \"nbd\"}", "t")).getMessage().contains("\"mountBackend\" must be one of"));
        assertTrue(assertThrows(ConfigException.class, () -> ConfigLoader.parse("{\"root\": ", "t")).getMessage().contains("not valid JSON"));
        assertTrue(assertThrows(ConfigException.class, () -> ConfigLoader.parse("{\"root\": \"/a\", \"root\": \"/b\"}", "t")).getMessage().contains("root"));
    }
}
