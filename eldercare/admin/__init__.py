"""Administration commands of the `eldercare` CLI, one module per part of the registry."""
