package dev.sparksft.template;

import dev.sparksft.UserError;
import dev.sparksft.data.Conversation;
import dev.sparksft.data.ImageFile;
import dev.sparksft.data.Message;
import dev.sparksft.data.TokenizedExample;
import dev.sparksft.image.ImageProcessorConfig;
import dev.sparksft.image.ImageSizing;
import java.util.ArrayList;
import java.util.List;

/**
 * LLaMA-Factory's {@code Qwen2VLPlugin.process_messages} for images, bound to a model's image
 * processor: the number of images must equal the number of {@code <image>} placeholders in the
 * messages ("The number of images does not match the number of <image> tokens"), and each
 * placeholder becomes {@code <|vision_start|>} + {@code <|image_pad|>} x n + {@code <|vision_end|>},
 * n = the image's grid t h w / merge_size^2, the grid counted from the image's header size
 * ({@link ImageProcessorConfig#grid}: image_max_pixels / image_min_pixels, then smart_resize).
 * Video and audio placeholders are refused: not supported yet.
 */
public record ImageTokens(MmPlugin plugin, ImageProcessorConfig processor, long imageMaxPixels, long imageMinPixels)
        implements java.io.Serializable {

    /** The patch grid of one image. */
    public TokenizedExample.Image image(ImageFile file) {
        ImageSizing.Grid g = processor.grid(new ImageSizing.Size(file.width(), file.height()), imageMaxPixels,
                imageMinPixels);
        return new TokenizedExample.Image(file.path(), g.t(), g.h(), g.w());
    }

    /** The language-model tokens of an image of this grid. */
    public int numTokens(TokenizedExample.Image image) {
        return image.patches() / (processor.mergeSize() * processor.mergeSize());
    }

    /**
     * The conversation's messages with every {@code <image>} expanded, after checking that the
     * images and the placeholders agree; {@code grids} are the conversation's images in order.
     */
    public List<Message> expand(Conversation c, List<TokenizedExample.Image> grids) {
        List<Message> messages = c.messages();
        int numTags = 0;
        for (int i = 0; i < messages.size(); i++) {
            String content = messages.get(i).content();
            for (String tag : List.of(Conversation.VIDEO_PLACEHOLDER, Conversation.AUDIO_PLACEHOLDER)) {
                if (content.contains(tag)) {
                    throw new UserError(c.source() + ": message " + i + " holds " + tag + ": "
                            + (tag.equals(Conversation.VIDEO_PLACEHOLDER) ? "videos" : "audio")
                            + " are not supported yet; remove the placeholder (images are supported, as <image>)");
                }
            }
            for (String token : List.of(plugin.imageToken(), plugin.videoToken(), plugin.visionBos(), plugin.visionEos())) {
                if (content.contains(token) || c.system().contains(token)) {
                    throw new UserError(c.source() + ": " + (content.contains(token) ? "message " + i : "the system prompt")
                            + " holds the token " + token + " as text, which only the template may place; write "
                            + "<image> where an image goes");
                }
            }
            numTags += count(content, Conversation.IMAGE_PLACEHOLDER);
        }
        if (numTags != grids.size()) {
            throw new UserError(c.source() + ": The number of images does not match the number of "
                    + Conversation.IMAGE_PLACEHOLDER + " tokens: the images column has " + grids.size() + " image(s), the "
                    + "messages " + numTags + " " + Conversation.IMAGE_PLACEHOLDER + " placeholder(s); write one "
                    + Conversation.IMAGE_PLACEHOLDER + " where each image goes, in the images column's order");
        }
        List<Message> out = new ArrayList<>(messages.size());
        int next = 0;
        for (Message m : messages) {
            String content = m.content();
            StringBuilder b = new StringBuilder();
            int from = 0;
            for (int at = content.indexOf(Conversation.IMAGE_PLACEHOLDER); at >= 0;
                 at = content.indexOf(Conversation.IMAGE_PLACEHOLDER, from)) {
                b.append(content, from, at).append(plugin.visionBos())
                        .append(plugin.imageToken().repeat(numTokens(grids.get(next++)))).append(plugin.visionEos());
                from = at + Conversation.IMAGE_PLACEHOLDER.length();
            }
            b.append(content.substring(from));
            out.add(m.withContent(b.toString()));
        }
        return out;
    }

    static int count(String text, String tag) {
        int n = 0;
        for (int at = text.indexOf(tag); at >= 0; at = text.indexOf(tag, at + tag.length())) {
            n++;
        }
        return n;
    }
}
