"""A local emulator of Segment and Customer.io (docs/commands.md `cdpio sandbox`, docs/sandbox.md)."""
