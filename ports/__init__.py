"""The interfaces the migration needs from the outside world, in the migration's own words."""

from user_migration.ports.change_stream import ChangeStream
from user_migration.ports.migration_state import MigrationState
from user_migration.ports.user_source import UserSource
from user_migration.ports.user_target import UserTarget
from user_migration.ports.write_budget import BudgetShares, TableCapacity, WriteBudget

__all__ = ["BudgetShares", "ChangeStream", "MigrationState", "TableCapacity", "UserSource", "UserTarget", "WriteBudget"]
