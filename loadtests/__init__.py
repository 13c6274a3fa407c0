"""Load tooling: locust users of the sale and the sales benchmark that prints figures (not timed tests)."""
