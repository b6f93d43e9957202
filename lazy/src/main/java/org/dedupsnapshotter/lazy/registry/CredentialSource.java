package org.dedupsnapshotter.lazy.registry;

import java.io.IOException;
import java.util.Optional;

/** Where a registry client gets credentials for its host; asked again when the registry refuses the ones it had. */
@FunctionalInterface
public interface CredentialSource {
    CredentialSource NONE = host -> Optional.empty();

    Optional<Credentials> lookup(String host) throws IOException;
}
