"""A local emulator of Segment and Customer.io (docs/commands.md, docs/sandbox.md)."""
