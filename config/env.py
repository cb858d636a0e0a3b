"""The environment, read once through django-environ; a `.env` file at the repo root is read if present."""

import environ

from core.embedded.paths import BASE_DIR, var_dir

env = environ.Env()
if (BASE_DIR / ".env").is_file():
    env.read_env(BASE_DIR / ".env", overwrite=False)

VAR_DIR = var_dir()
