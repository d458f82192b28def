"""The speaker: tones and speech rendered to WAV (wav.py, speech.py), where they go (outputs.py:
ALSA or a directory of files) and the supervised player with its bounded queue (service.py)."""
