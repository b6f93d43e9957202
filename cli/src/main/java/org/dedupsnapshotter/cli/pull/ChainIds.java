package org.dedupsnapshotter.cli.pull;

import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;

/**
 * The OCI chain ids of an image's layers (image-spec identity.ChainID): the first is the first diff_id, each next
 * one sha256("parent-chain-id diff_id"). containerd names committed layer snapshots by them.
 */
public final class ChainIds {
    private ChainIds() {}

    public static List<String> of(List<String> diffIds) {
        List<String> out = new ArrayList<>(diffIds.size());
        String chain = null;
        for (String d : diffIds) {
            chain = chain == null ? d : sha256(chain + " " + d);
            out.add(chain);
        }
        return out;
    }

    private static String sha256(String s) {
        try {
            return "sha256:" + HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(s.getBytes(StandardCharsets.UTF_8)));
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }
}
