"""Moved to tests/support/devices.py; kept for branches in flight."""
from tests.support.devices import RawDevice, forget_device

__all__ = ["RawDevice", "forget_device"]
