"""cdpio: set up and prove a Segment -> Customer.io integration."""

__version__ = "0.1.0"
