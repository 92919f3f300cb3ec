"""Administration commands of the `eldercare` CLI, one module per part."""
