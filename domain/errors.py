"""The one error type the domain raises when a command breaks a rule."""


class DomainError(ValueError):
    """A command was refused because it breaks a business rule; the message says which."""
