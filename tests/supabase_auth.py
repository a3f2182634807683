"""Supabase's `auth.users` as its own migrations leave it (supabase/auth, `migrations/*.up.sql`), in a
schema of the test's own, and Keycloak's `user_entity` (a varchar(36) key): real tables with uuid and
text keys, mapped as they are (no view, no added column)."""

from __future__ import annotations

import uuid

# The columns and constraints of `auth.users` after Supabase's migrations (20221208..., the phone,
# SSO, anonymous and deleted_at additions included). `{schema}` replaces `auth`.
SUPABASE_AUTH_USERS = """
CREATE TABLE {schema}.users (
    instance_id uuid NULL,
    id uuid NOT NULL UNIQUE,
    aud varchar(255) NULL,
    "role" varchar(255) NULL,
    email varchar(255) NULL,
    encrypted_password varchar(255) NULL,
    email_confirmed_at timestamptz NULL,
    invited_at timestamptz NULL,
    confirmation_token varchar(255) NULL,
    confirmation_sent_at timestamptz NULL,
    recovery_token varchar(255) NULL,
    recovery_sent_at timestamptz NULL,
    email_change_token_new varchar(255) NULL,
    email_change varchar(255) NULL,
    email_change_sent_at timestamptz NULL,
    last_sign_in_at timestamptz NULL,
    raw_app_meta_data jsonb NULL,
    raw_user_meta_data jsonb NULL,
    is_super_admin bool NULL,
    created_at timestamptz NULL,
    updated_at timestamptz NULL,
    phone text NULL UNIQUE DEFAULT NULL,
    phone_confirmed_at timestamptz NULL DEFAULT NULL,
    phone_change text NULL DEFAULT '',
    phone_change_token varchar(255) NULL DEFAULT '',
    phone_change_sent_at timestamptz NULL DEFAULT NULL,
    confirmed_at timestamptz GENERATED ALWAYS AS (LEAST(email_confirmed_at, phone_confirmed_at)) STORED,
    email_change_token_current varchar(255) NULL DEFAULT '',
    email_change_confirm_status smallint DEFAULT 0
        CHECK (email_change_confirm_status >= 0 AND email_change_confirm_status <= 2),
    banned_until timestamptz NULL,
    reauthentication_token varchar(255) NULL DEFAULT '',
    reauthentication_sent_at timestamptz NULL DEFAULT NULL,
    is_sso_user boolean NOT NULL DEFAULT false,
    deleted_at timestamptz NULL,
    is_anonymous boolean NOT NULL DEFAULT false,
    CONSTRAINT users_pkey PRIMARY KEY (id)
);
CREATE INDEX users_instance_id_email_idx ON {schema}.users USING btree (instance_id, lower((email)::text));
CREATE INDEX users_instance_id_idx ON {schema}.users USING btree (instance_id);
CREATE UNIQUE INDEX confirmation_token_idx ON {schema}.users USING btree (confirmation_token)
    WHERE confirmation_token::text !~ '^[0-9 ]*$';
CREATE INDEX users_is_anonymous_idx ON {schema}.users USING btree (is_anonymous);
"""

# Keycloak's user table (`USER_ENTITY`, its Liquibase changelogs), in a schema of the test's own.
KEYCLOAK_USER_ENTITY = """
CREATE TABLE {schema}.user_entity (
    id varchar(36) NOT NULL,
    email varchar(255) NULL,
    email_constraint varchar(255) NULL,
    email_verified boolean NOT NULL DEFAULT false,
    enabled boolean NOT NULL DEFAULT false,
    federation_link varchar(255) NULL,
    first_name varchar(255) NULL,
    last_name varchar(255) NULL,
    realm_id varchar(255) NULL,
    username varchar(255) NULL,
    created_timestamp bigint NULL,
    service_account_client_link varchar(255) NULL,
    not_before integer NOT NULL DEFAULT 0,
    CONSTRAINT constraint_fb PRIMARY KEY (id),
    CONSTRAINT uk_dykn684sl8up1crfei6eckhd7 UNIQUE (realm_id, email_constraint),
    CONSTRAINT uk_ru8tt6t700s9v50bu18ws5ha6 UNIQUE (realm_id, username)
);
"""


def _source(table: str, key_type: str | None, version: str | None) -> str:
    """A mapping file's [source] table, key `id` of `key_type` (none: the integer default)."""
    lines = [f'table = "{table}"', 'key = "id"']
    lines += [f'key_type = "{key_type}"'] if key_type else []
    lines += [f'version = "{version}"'] if version else []
    return "[source]\n" + "\n".join(lines) + "\n\n"


def supabase_mapping(schema: str, key_type: str | None = "uuid") -> str:
    """A mapping file for `{schema}.users`: the key as it is, every column carried but the password."""
    return (
        _source(f"{schema}.users", key_type, "updated_at")
        + '[target]\nkey_attribute = "id"\n\n[attributes]\nemail = "email"\n\n[rules.email]\nemail = true\n\n'
        '[other_columns]\nexclude = ["encrypted_password"]\n'
    )


def keycloak_mapping(schema: str, key_type: str | None = "text") -> str:
    """A mapping file for `{schema}.user_entity` (no version column: Keycloak keeps none)."""
    return (
        _source(f"{schema}.user_entity", key_type, None)
        + '[target]\nkey_attribute = "id"\n\n[attributes]\nusername = "username"\n\n'
        "[rules.username]\npattern = '.{1,255}'\n\n[rules.email]\nemail = true\n"
    )


def unique_schema(prefix: str) -> str:
    """A schema name no other test uses."""
    return f"{prefix}_{uuid.uuid4().hex[:10]}"
