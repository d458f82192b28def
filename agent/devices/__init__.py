"""Device layer: scanner, printer and lock boards. Knows nothing of the store or sync."""
