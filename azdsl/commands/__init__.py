"""The `azdsl` subcommands, one module each: `register(subparsers)` sets `func=run`."""
