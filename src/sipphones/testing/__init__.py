"""Testing a Zoom integration against sipphones: a running emulator's control plane as Python
calls (``control``), a server started for a test run (``server``), the app in this process
(``inprocess``) and the pytest plugin built on them (``pytest_plugin``, registered by entry point)."""

from sipphones.testing.control import Control, ControlError, FreshAccount
from sipphones.testing.inprocess import InProcessEmulator
from sipphones.testing.server import EmulatorServer

__all__ = ["Control", "ControlError", "FreshAccount", "EmulatorServer", "InProcessEmulator"]
