"""Users, roles at institutions, password and token authentication, sessions and CSRF."""
