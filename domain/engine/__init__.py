"""The machinery every kind of whole-table work shares: reading pages ahead, running a per-page
step on several pages side by side, and taking their outcomes in page order."""
