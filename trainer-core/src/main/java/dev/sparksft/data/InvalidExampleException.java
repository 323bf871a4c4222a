package dev.sparksft.data;

/** An example that cannot be trained on (wrong role order, unknown role tag): dropped and counted. */
public final class InvalidExampleException extends RuntimeException {
    public InvalidExampleException(String reason) {
        super(reason, null, false, false);
    }
}
