package dev.sparksft.dist;

/** A rank could not join, or a collective failed or timed out: the run cannot go on as one world. */
public final class DistributedException extends RuntimeException {
    public DistributedException(String message, Throwable cause) {
        super(message, cause);
    }

    public DistributedException(String message) {
        super(message);
    }
}
