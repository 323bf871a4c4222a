package dev.sparksft.spark;

/** The one line a scheduler log should show for a failed job. */
final class Failures {
    private Failures() {}

    /**
     * The user's mistake a job failed with when an executor found it (a row's missing image, a tools
     * column its template cannot write): the UserError that Spark keeps as the cause of the job's
     * exception; null when the failure is a rank's report or no UserError.
     */
    static dev.sparksft.UserError userError(Throwable t) {
        if (String.valueOf(t.getMessage()).contains("spark-sft rank ")) {
            return null;
        }
        for (Throwable c = t; c != null; c = c.getCause() == c ? null : c.getCause()) {
            if (c instanceof dev.sparksft.UserError user) {
                return user;
            }
        }
        return null;
    }

    /**
     * The first line of the rank's own report ("spark-sft rank 1 of 2 failed at step 6: ...") when
     * the failure came from a rank, else the innermost cause's message.
     */
    static String oneLine(Throwable t) {
        String all = String.valueOf(t.getMessage());
        int at = all.indexOf("spark-sft rank ");
        if (at >= 0) {
            int end = all.indexOf('\n', at);
            return all.substring(at, end < 0 ? all.length() : end);
        }
        Throwable root = t;
        while (root.getCause() != null && root.getCause() != root) {
            root = root.getCause();
        }
        String m = root.getClass().getSimpleName() + ": " + root.getMessage();
        int nl = m.indexOf('\n');
        return nl < 0 ? m : m.substring(0, nl);
    }
}
