"""Administration commands of the `eldercare` CLI, one module per part (ledger, devices,
staff, ...), each exposing `register(sub, add)` that build_parser calls."""
