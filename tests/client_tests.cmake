# Client tests.
