"""Packaging for user-migration: PostgreSQL users into DynamoDB, safely and resumably."""

from setuptools import find_packages, setup

ROOMS = ("domain", "ports", "adapters", "entrypoints")

setup(
    name="user-migration",
    version="0.1.0",
    description="Moves users from PostgreSQL into Amazon DynamoDB: HTTP service, CLI and library.",
    python_requires=">=3.11",
    package_dir={"user_migration": "."},
    packages=[f"user_migration.{name}" for name in find_packages(include=[f"{room}*" for room in ROOMS])],
    py_modules=["user_migration.container"],
    package_data={
        "user_migration.adapters": ["sql/*.sql"],
        "user_migration.entrypoints.http": ["*.json", "dashboard/*"],
    },
    install_requires=[
        "aiohttp>=3.9,<4",
        "aiopg>=1.4,<2",
        "psycopg2-binary>=2.9,<3",
        "aioboto3>=13,<16",
        "attrs>=23.1",
        "cattrs>=23.2",
        "dependency-injector>=4.41,<5",
        "prometheus-client>=0.20,<1",
        "pyjwt[crypto]>=2.8,<3",
    ],
    extras_require={
        "dev": [
            "pytest>=8,<10",
            "pytest-xdist>=3.5,<4",
            "pytest-aiohttp>=1.0.5,<2",
            "moto[server,dynamodb]>=5.0,<6",
            "hypothesis>=6.100,<7",
            "schemathesis>=4.32,<5",
            "pgserver>=0.1.4,<0.2",
            "ruff>=0.5",
            "mypy>=1.10",
        ],
    },
    entry_points={"console_scripts": ["user-migration=user_migration.entrypoints.cli.command:run"]},
)
