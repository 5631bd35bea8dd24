"""`bastion demo`: the whole describe → assess → mitigate → verify loop on a built-in system."""

from bastion.demo.runner import DemoResult, run_demo

__all__ = ["DemoResult", "run_demo"]
