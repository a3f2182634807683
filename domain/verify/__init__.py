"""Items compared with rows, the differences named, the verify requests."""
