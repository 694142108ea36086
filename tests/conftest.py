"""Fixtures every test directory can use: one OpenBao and one moto server per session,
started only when a test asks for them (``vault``, ``moto_url``, ``fault_proxy``...)."""

pytest_plugins = ["tests.servers.vault", "tests.servers.aws"]
