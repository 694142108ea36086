"""The engine behind the Authenticator: token exchange, retries, the refresh flow,
the token cell, sending, hosts and counters. No settings, no CLI, no sources."""
