"""Server-rendered web UI: shell, navigation by role, language switch, home pages."""
