package dev.sparksft.data;

import dev.sparksft.UserError;

/** One turn of a conversation. */
public record Message(Role role, String content) {
    public Message {
        if (role == null || content == null) {
            throw new UserError("a message needs a role and content, got role=" + role + ", content=" + content);
        }
    }

    public Message withContent(String newContent) {
        return new Message(role, newContent);
    }
}
