"""The batch and single-user use cases, a whole-table run, their requests and reports."""
