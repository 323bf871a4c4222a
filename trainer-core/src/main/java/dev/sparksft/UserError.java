package dev.sparksft;

/**
 * A mistake in what the user gave: configuration, data, a model or output directory. The
 * message names the key, file or row, the value, and the fix; the command lines print it as one
 * line and exit with 2. Every other exception is a bug in spark-sft or a failure of the machine
 * (exit 1, with its stack trace). It is an {@link IllegalArgumentException}, so the callers that
 * already expect one keep working, but only this type counts as the user's mistake: a
 * {@code NumberFormatException} thrown by a bug is not one.
 */
public class UserError extends IllegalArgumentException {
    public UserError(String message) {
        super(message);
    }
}
