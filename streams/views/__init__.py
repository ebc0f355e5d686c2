"""Views of the admin UI, one module per area; each parses input, calls a service or a
selector, and renders a template."""
