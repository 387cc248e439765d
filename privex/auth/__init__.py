"""Authentication: password hashing, and (later) wallet signature verifiers, nonces and tokens."""
