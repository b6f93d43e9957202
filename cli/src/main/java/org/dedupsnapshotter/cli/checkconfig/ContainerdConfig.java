package org.dedupsnapshotter.cli.checkconfig;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.dataformat.toml.TomlMapper;

import java.io.IOException;
import java.util.ArrayList;
import java.util.List;

/**
 * A containerd config.toml as a tree: either containerd's own effective config (`containerd config dump`: migrated to
 * the binary's config version, defaults filled, imports merged) or the file as written. Missing sections read as
 * missing nodes, never null.
 */
public final class ContainerdConfig {
    private static final TomlMapper TOML = new TomlMapper();
    private final JsonNode root;

    private ContainerdConfig(JsonNode root) {
        this.root = root;
    }

    public static ContainerdConfig parse(String toml) throws IOException {
        return new ContainerdConfig(TOML.readTree(toml));
    }

    /** The config's version; containerd reads a file without one as version 1. */
    public int version() { return root.path("version").asInt(1); }

    public JsonNode proxyPlugin(String name) { return root.path("proxy_plugins").path(name); }

    /** A plugin's section by its full id, e.g. io.containerd.cri.v1.images. */
    public JsonNode plugin(String id) { return root.path("plugins").path(id); }

    public List<String> disabledPlugins() {
        List<String> out = new ArrayList<>();
        root.path("disabled_plugins").forEach(n -> out.add(n.asText()));
        return out;
    }

    public List<String> imports() {
        List<String> out = new ArrayList<>();
        root.path("imports").forEach(n -> out.add(n.asText()));
        return out;
    }
}
