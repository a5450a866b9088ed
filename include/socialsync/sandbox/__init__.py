"""A local stand-in for the networks' public APIs and the ML / image-recognition job services."""
