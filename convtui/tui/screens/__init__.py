"""One module per lesson or dashboard screen."""
