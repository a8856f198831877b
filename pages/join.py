"""Legacy-mode entry for /join in a fresh server's first seconds: hands over to app.py (see pages/__init__.py)."""

from pages import enter_app

enter_app()
