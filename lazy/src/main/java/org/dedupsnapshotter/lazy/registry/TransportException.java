package org.dedupsnapshotter.lazy.registry;

import java.io.IOException;

/**
 * The link to a registry failed, not the registry's answer: a connection refused or reset, an answer cut short, a
 * body that stopped arriving. Worth another attempt ({@link RetryPolicy#retryable}).
 */
public class TransportException extends IOException {
    public TransportException(String message, Throwable cause) { super(message, cause); }

    public TransportException(String message) { super(message); }
}
