"""`python -m user_migration.entrypoints.cli`."""

import sys

from user_migration.entrypoints.cli.main import main

sys.exit(main())
