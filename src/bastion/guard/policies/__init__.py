"""Built-in guard policies; each is registered in `bastion.registry.BUILTINS["policies"]`."""
