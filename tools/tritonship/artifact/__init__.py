"""The repository as ``model.tar.gz``: deterministic packaging and safe unpacking."""
