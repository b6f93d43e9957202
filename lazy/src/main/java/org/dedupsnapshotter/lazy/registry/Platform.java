package org.dedupsnapshotter.lazy.registry;

import com.fasterxml.jackson.databind.JsonNode;

import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * An image platform as an index entry names it (os, architecture, variant), matched the way containerd's platforms
 * package matches: os and architecture equal, and the variant too when the wanted one names one (arm64's "v8" is the
 * same as none). Java's os.arch names are turned into OCI's (x86_64 → amd64, aarch64 → arm64).
 */
public record Platform(String os, String architecture, String variant) {
    public Platform {
        os = os.toLowerCase(Locale.ROOT);
        architecture = normalArch(architecture.toLowerCase(Locale.ROOT));
        variant = normalVariant(architecture, variant == null ? "" : variant.toLowerCase(Locale.ROOT));
    }

    /** "os/arch[/variant]"; an IllegalArgumentException names what is wrong. */
    public static Platform parse(String spec) {
        String[] p = spec.strip().split("/", -1);
        if (p.length < 2 || p.length > 3 || p[0].isEmpty() || p[1].isEmpty() || (p.length == 3 && p[2].isEmpty()))
            throw new IllegalArgumentException("platform \"" + spec + "\" is not OS/ARCH[/VARIANT] (e.g. linux/amd64, linux/arm64, linux/arm/v7)");
        return new Platform(p[0], p[1], p.length == 3 ? p[2] : "");
    }

    /** A comma-separated list of platforms (a --platform value). */
    public static List<Platform> parseList(String specs) {
        List<Platform> out = new ArrayList<>();
        for (String s : specs.split(",")) if (!s.isBlank()) out.add(parse(s));
        if (out.isEmpty()) throw new IllegalArgumentException("no platform in \"" + specs + "\"");
        return out;
    }

    /** The platform this JVM runs on (what containerd's platforms.DefaultSpec() gives on this node, without arm's variant). */
    public static Platform host() {
        return new Platform(System.getProperty("os.name"), System.getProperty("os.arch"), "");
    }

    /** An index entry's "platform" object (missing fields: empty, which matches nothing). */
    public static Platform of(JsonNode platform) {
        return new Platform(platform.path("os").asText(""), platform.path("architecture").asText(""), platform.path("variant").asText(""));
    }

    /** Whether an image of platform `image` serves this one. */
    public boolean matches(Platform image) {
        return os.equals(image.os) && architecture.equals(image.architecture) && (variant.isEmpty() || variant.equals(image.variant));
    }

    @Override
    public String toString() {
        return os + "/" + architecture + (variant.isEmpty() ? "" : "/" + variant);
    }

    private static String normalArch(String arch) {
        return switch (arch) {
            case "x86_64", "x86-64", "amd64" -> "amd64";
            case "aarch64", "arm64" -> "arm64";
            case "i386", "i686", "x86" -> "386";
            default -> arch;
        };
    }

    private static String normalVariant(String arch, String variant) {
        String a = normalArch(arch.toLowerCase(Locale.ROOT));
        if (a.equals("arm64") && variant.equals("v8")) return "";
        if (a.equals("amd64") && variant.equals("v1")) return "";
        return variant;
    }
}
