"""What a scan means: the flows between the devices, the store and the resident's screen."""
