package io.moe4j.chat;

import java.util.LinkedHashMap;
import java.util.Map;

/** One message of a conversation: {@code role} is {@code system}, {@code user} or {@code assistant}. */
public record Message(String role, String content) {

    public Message {
        if (role == null || role.isBlank()) throw new IllegalArgumentException("a message needs a role");
        if (content == null) content = "";
    }

    public static Message system(String content) {
        return new Message("system", content);
    }

    public static Message user(String content) {
        return new Message("user", content);
    }

    public static Message assistant(String content) {
        return new Message("assistant", content);
    }

    /** The message as chat templates see it: an object with {@code role} and {@code content}. */
    public Map<String, Object> toTemplateValue() {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("role", role);
        m.put("content", content);
        return m;
    }
}
