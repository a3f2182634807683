"""The mapping of Django's `auth_user` table that docs/your-own-table.md shows, for the tests that use it."""

from __future__ import annotations

DJANGO_MAPPING = """
[source]
table = "{table}"
key = "id"

[attributes]
username = "username"
email = "email"
display_name = "first_name || ' ' || last_name"
status = "CASE WHEN is_active THEN 'active' ELSE 'suspended' END"
created_at = "date_joined"

[rules.username]
pattern = '^[\\w.@+-]{{1,150}}$'
[rules.email]
required = false
email = true

[other_columns]
carry = true
exclude = ["password"]
"""


def django_mapping(table: str) -> str:
    """The TOML text of the mapping, reading `table`."""
    return DJANGO_MAPPING.format(table=table)
