"""Local-only tools of MatCarv AIOps: for the local stack and the tests, never shipped to MWAA or the Lambda.

Installed into ``.venv`` from ``pyproject.toml`` (import root ``aiops_local``, folder ``local/aiops_local``).
"""
