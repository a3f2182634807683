"""The command line: `user-migration` (parser and dispatch in `main`, exit codes in `exit_codes`)."""
