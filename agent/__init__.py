"""cart-agent: the offline-first daemon of a roadside service cart."""

__version__ = "0.1.0"
