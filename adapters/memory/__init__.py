"""In-memory adapters of every port: unit tests and the public test harness."""
