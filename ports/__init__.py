"""The interfaces the migration needs from the outside world, in the migration's own words."""

from ports.change_stream import ChangeStream
from ports.migration_state import MigrationState
from ports.user_source import UserSource
from ports.user_target import UserTarget
from ports.write_budget import BudgetShares, TableCapacity, WriteBudget

__all__ = ["BudgetShares", "ChangeStream", "MigrationState", "TableCapacity", "UserSource", "UserTarget", "WriteBudget"]
