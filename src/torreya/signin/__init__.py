"""Signing in the way residents already do (SPEC §4.7); the SMS gateway lives here."""
