package dev.sparksft.spark;

import java.net.URI;
import org.apache.hadoop.fs.RawLocalFileSystem;

/**
 * A Hadoop file system with its own scheme (testfs://) over the local disk: output_dir on it goes
 * through the Hadoop client like hdfs: or s3a: would, and the test can still look at the files.
 */
public class TestFs extends RawLocalFileSystem {
    @Override
    public URI getUri() {
        return URI.create("testfs:///");
    }

    @Override
    public String getScheme() {
        return "testfs";
    }
}
