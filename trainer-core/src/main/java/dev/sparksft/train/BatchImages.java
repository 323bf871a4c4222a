package dev.sparksft.train;

import dev.sparksft.UserError;
import dev.sparksft.data.Batch;
import dev.sparksft.data.Collator;
import dev.sparksft.data.MediaFiles;
import dev.sparksft.data.TokenizedExample;
import dev.sparksft.image.ImageProcessor;
import dev.sparksft.image.ImageSizing;
import dev.sparksft.image.PixelValues;
import dev.sparksft.image.VisionInputs;
import java.io.IOException;
import java.io.InputStream;
import java.util.ArrayList;
import java.util.List;
import org.bytedeco.pytorch.Tensor;

/**
 * A micro-batch's images, read and processed where the batch trains (a Spark rank reads them
 * from the Hadoop file system its examples name, never through the driver): each example's
 * images in token order, rows in batch order, through the model's image processor into one
 * pixel_values tensor (sum of patches, C x T x P x P) and its image_grid_thw. An image's grid
 * must be the one its tokens were counted from when the example was encoded (from its header);
 * a file that changed since is the user's to fix.
 */
public final class BatchImages {
    /** For a text model: its examples have no images. */
    public static final BatchImages NONE = new BatchImages(null, null);

    private final MediaFiles files;
    private final ImageProcessor processor;

    /** @param files where the examples' resolved image paths are read */
    public BatchImages(MediaFiles files, ImageProcessor processor) {
        this.files = files;
        this.processor = processor;
    }

    /**
     * The images of {@code model}'s batches: {@link #NONE} for a text model; for a vision-language model
     * its image processor (modelDir's preprocessor_config.json, LLaMA-Factory's image_max_pixels and
     * image_min_pixels) over the images {@code files} reads.
     */
    public static BatchImages forModel(dev.sparksft.model.CausalLm model, java.nio.file.Path modelDir, MediaFiles files,
                                       long imageMaxPixels, long imageMinPixels) throws IOException {
        if (model.visionLanguage() == null) {
            return NONE;
        }
        return new BatchImages(files, new ImageProcessor(dev.sparksft.image.ImageProcessorConfig.read(modelDir),
                imageMaxPixels, imageMinPixels));
    }

    /** {@code rows} right-padded ({@link Collator#rightPadded}) with their images. */
    public Batch collate(List<TokenizedExample> rows, int padId) {
        return Collator.rightPadded(rows, padId, Collator.PAD_TO_MULTIPLE_OF).withImages(of(rows));
    }

    /** The images of {@code rows} as model input, or null when none of them has an image. */
    public VisionInputs of(List<TokenizedExample> rows) {
        return of(rows.stream().map(TokenizedExample::index).toList(), rows.stream().map(TokenizedExample::images).toList());
    }

    /**
     * The images of the rows whose examples are {@code indices} (for messages) and whose images are
     * {@code rowImages}, in order, as model input; null when there are none.
     */
    public VisionInputs of(List<Long> indices, List<List<TokenizedExample.Image>> rowImages) {
        List<PixelValues> images = new ArrayList<>();
        List<int[]> grids = new ArrayList<>();
        for (int r = 0; r < rowImages.size(); r++) {
            long row = indices.get(r);
            for (TokenizedExample.Image image : rowImages.get(r)) {
                if (processor == null) {
                    throw new IllegalStateException("example " + row + " has images but the model has no "
                            + "image processor (the run checks refuse images for a text model)");
                }
                PixelValues pixels = processor.process(read(image.path(), row), image.path());
                ImageSizing.Grid expected = new ImageSizing.Grid(image.gridT(), image.gridH(), image.gridW());
                if (!pixels.grid().equals(expected)) {
                    throw new UserError("example " + row + ": image " + image.path() + " gives a " + pixels.grid()
                            + " patch grid, but its tokens were counted for " + expected + " when the example was "
                            + "encoded; the file changed since (tokenized_path?): encode the dataset again");
                }
                images.add(pixels);
                grids.add(new int[] {expected.t(), expected.h(), expected.w()});
            }
        }
        if (images.isEmpty()) {
            return null;
        }
        float[] values = PixelValues.concat(images);                    // (sum of patches, patchDim), row-major
        long patchDim = images.get(0).patchDim();
        Tensor pixelValues = Tensor.create(values, values.length / patchDim, patchDim);
        return new VisionInputs(pixelValues, grids.toArray(new int[0][]));
    }

    private byte[] read(String path, long row) {
        try (InputStream in = files.open(path)) {
            return in.readAllBytes();
        } catch (java.io.FileNotFoundException e) {
            throw new UserError("example " + row + ": image " + path + " no longer exists (it did when the "
                    + "dataset was read); restore it or encode the dataset again");
        } catch (IOException e) {
            throw new UserError("example " + row + ": cannot read image " + path + ": " + e.getMessage());
        }
    }
}
