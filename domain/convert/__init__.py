"""A row into a user, a user into an item's values: mapping, rules, values, versions, limits."""
