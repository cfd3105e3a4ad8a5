"""The Flask sample with its demo users' passwords hashed with a cheap work factor (see
tests/soak/apps.py); ``flask --app tests.soak.flask_app`` finds the sample's ``create_app``."""

from __future__ import annotations

from werkzeug.security import generate_password_hash

from sample_projects.flask_app import DEMO_PASSWORDS, DEMO_USERS, create_app

__all__ = ["create_app"]

for _name, _user in DEMO_USERS.items():
    # Werkzeug's own format: check_password_hash reads the method from the hash.
    _user.password_hash = generate_password_hash(DEMO_PASSWORDS[_name], method="pbkdf2:sha256:1")
