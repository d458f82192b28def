"""Lights over the compartments or one for the cart: outputs (outputs.py: GPIO through
libgpiod, or a file that records every change) and the blinking service (service.py)."""
