"""Task sources: one module per suite (embedded generator + real-format loader)."""
