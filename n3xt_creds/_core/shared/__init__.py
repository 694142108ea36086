"""Process-shared token caches: the in-process cell stays L1, these are L2.

:mod:`.base` (the TokenCache protocol, entry keys and sealing), :mod:`.coordinator`
(how a refresh uses the store: adopt, lease, wait, publish, fall back), :mod:`.file`
(one host) and :mod:`.redis` (a fleet). Nothing here is imported by
``import n3xt_creds`` until a shared cache is used, and ``cryptography`` and
``redis`` load only when a store is first touched.
"""
