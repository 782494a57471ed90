"""Services return domain rows (``models.tables``) and plain values, never API schemas: routes build those."""
