"""Local HTTP servers that behave like the outside services the sync jobs talk to."""
