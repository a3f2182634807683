"""Implementations of the ports: PostgreSQL, DynamoDB, and in-memory ones for test harnesses."""
