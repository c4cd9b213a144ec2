"""Fixtures of the reliability tests: the demo app and its signaling clients (tests/demo)."""

from demokit import clients, data_root, demo_app, demo_env, loopback_ice  # noqa: F401
