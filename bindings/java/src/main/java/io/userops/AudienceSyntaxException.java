package io.userops;

/**
 * An audience expression is wrong: bad syntax, an unknown tag, a type mismatch
 * ({@code audience_syntax}); the message says the column and the nearest known name. Python:
 * {@code userops.AudienceSyntaxError}.
 */
public class AudienceSyntaxException extends UserOpsException {
    private static final long serialVersionUID = 1L;

    AudienceSyntaxException(int status, String code, String message, String field) {
        super(status, code, message, field);
    }
}
