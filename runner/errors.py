class ConfigError(ValueError):
    """A config value is of the wrong type, out of range, or does not fit the data."""
