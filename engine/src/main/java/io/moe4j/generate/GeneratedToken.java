package io.moe4j.generate;

/**
 * One generated token as streamed to the caller. {@code text} is the text this token completes: it may be empty
 * (a UTF-8 character still incomplete, or text held back while it could be the start of a stop string) and it
 * never splits a character.
 */
public record GeneratedToken(int id, String text, int index) {
}
