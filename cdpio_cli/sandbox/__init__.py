"""A local emulator of Segment and Customer.io (DESIGN §5)."""
