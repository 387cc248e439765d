"""Request tenancy: organization, workspace and role of the caller, the permission table, ``scoped()`` queries."""
