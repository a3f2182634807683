"""What guards every write: ranges held by one writer, writes in flight."""
