"""Store backends: SQLite (the embedded default)."""
