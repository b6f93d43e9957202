package org.dedupsnapshotter.config;

/** A config file that cannot be used; the message names the key and the expected form. */
public final class ConfigException extends Exception {
    public ConfigException(String message) { super(message); }
}
