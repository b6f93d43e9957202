package org.dedupsnapshotter.lazy.registry;

import java.util.regex.Pattern;

/**
 * An image reference as docker and containerd read it: [HOST[:PORT]/]REPO[:TAG][@DIGEST]. A first component with a
 * dot or colon, or "localhost", is the registry; otherwise the image is on Docker Hub (registry-1.docker.io) and a
 * one-component name is in "library/".
 */
public record ImageRef(String host, String repository, String tag, String digest) {
    public static final String DOCKER_HUB = "registry-1.docker.io";
    private static final Pattern REPO = Pattern.compile("[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*");
    private static final Pattern TAG = Pattern.compile("[\\w][\\w.-]{0,127}");
    private static final Pattern DIGEST = Pattern.compile("sha256:[0-9a-f]{64}");

    public static ImageRef parse(String ref) {
        String rest = ref;
        String digest = null;
        int at = rest.indexOf('@');
        if (at >= 0) {
            digest = rest.substring(at + 1);
            rest = rest.substring(0, at);
            if (!DIGEST.matcher(digest).matches()) throw new IllegalArgumentException("image reference " + ref + ": bad digest " + digest);
        }
        String host = DOCKER_HUB;
        int slash = rest.indexOf('/');
        if (slash > 0) {
            String first = rest.substring(0, slash);
            if (first.contains(".") || first.contains(":") || first.equals("localhost")) {
                host = first.equals("docker.io") || first.equals("index.docker.io") ? DOCKER_HUB : first;
                rest = rest.substring(slash + 1);
            }
        }
        String tag = null;
        int colon = rest.lastIndexOf(':');
        if (colon >= 0) {
            tag = rest.substring(colon + 1);
            rest = rest.substring(0, colon);
            if (!TAG.matcher(tag).matches()) throw new IllegalArgumentException("image reference " + ref + ": bad tag " + tag);
        }
        if (host.equals(DOCKER_HUB) && !rest.contains("/")) rest = "library/" + rest;
        if (!REPO.matcher(rest).matches()) throw new IllegalArgumentException("image reference " + ref + ": bad repository name " + rest);
        if (tag == null && digest == null) tag = "latest";
        return new ImageRef(host, rest, tag, digest);
    }

    /** What to ask the registry for: the digest when there is one, else the tag. */
    public String reference() { return digest != null ? digest : tag; }

    @Override
    public String toString() {
        return host + "/" + repository + (tag != null ? ":" + tag : "") + (digest != null ? "@" + digest : "");
    }
}
