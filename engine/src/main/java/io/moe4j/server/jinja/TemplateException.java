package io.moe4j.server.jinja;

/** A template that cannot be parsed or rendered; {@link Raised} when the template itself calls raise_exception. */
public class TemplateException extends RuntimeException {
    public TemplateException(String message) {
        super(message);
    }

    /** {@code raise_exception(message)} was called by the template: the input is not what the template accepts. */
    public static final class Raised extends TemplateException {
        public Raised(String message) {
            super(message);
        }
    }
}
