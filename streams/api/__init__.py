"""The JSON API: the same services and selectors as the pages, for scripts and automation."""
