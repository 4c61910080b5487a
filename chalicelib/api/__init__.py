"""HTTP façades: one Chalice Blueprint per API, each with its own wire models and errors."""
