"""Every environment variable n3xt_creds reads, named once.

Code reads variables through these constants (and through an injected ``environ``
mapping where a test needs to control them), never through string literals.
"""

from __future__ import annotations

# Default variables EnvSource reads the client pair from.
CLIENT_ID = "N3XT_CLIENT_ID"
CLIENT_SECRET = "N3XT_CLIENT_SECRET"

# Settings: which file, which environment, and the prefix of per-key overrides.
SETTINGS_FILE = "N3XT_CREDS_SETTINGS"
SETTINGS_ENV = "N3XT_CREDS_ENV"
SETTINGS_PREFIX = "N3XT_CREDS"
# dynaconf's environment selector: honoured for a file shared with an app (section=).
DYNACONF_ENV = "ENV_FOR_DYNACONF"

# Vault's own variables, honoured the way the vault CLI does.
VAULT_ADDR = "VAULT_ADDR"
VAULT_TOKEN = "VAULT_TOKEN"
VAULT_NAMESPACE = "VAULT_NAMESPACE"
VAULT_CACERT = "VAULT_CACERT"
VAULT_CLIENT_CERT = "VAULT_CLIENT_CERT"
VAULT_CLIENT_KEY = "VAULT_CLIENT_KEY"
VAULT_SKIP_VERIFY = "VAULT_SKIP_VERIFY"
VAULT_ROLE_ID = "VAULT_ROLE_ID"
VAULT_SECRET_ID = "VAULT_SECRET_ID"

# Shared token cache: the per-user runtime directory (FileTokenCache's default home)
# and the default variable holding the Redis/Valkey URL (it may carry a password).
XDG_RUNTIME_DIR = "XDG_RUNTIME_DIR"
REDIS_URL = "REDIS_URL"
