"""The table's write capacity, shared between writers."""
