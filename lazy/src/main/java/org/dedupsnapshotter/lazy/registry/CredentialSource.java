package org.dedupsnapshotter.lazy.registry;

import java.io.IOException;
import java.util.Optional;

/**
 * Where a registry client gets credentials for its host; asked again when the registry refuses the ones it had.
 * A source may know credentials for one repository of a host only (a Kubernetes pull secret is given for an
 * image, and two images on one host may have different ones): {@link #lookup(String, String)} asks for those.
 */
@FunctionalInterface
public interface CredentialSource {
    CredentialSource NONE = host -> Optional.empty();

    Optional<Credentials> lookup(String host) throws IOException;

    /** The credentials for repository on host; a source that knows hosts only answers for the host. */
    default Optional<Credentials> lookup(String host, String repository) throws IOException { return lookup(host); }

    /** This source asked for one repository's credentials (what a client of that repository uses). */
    default CredentialSource forRepository(String repository) { return host -> lookup(host, repository); }
}
