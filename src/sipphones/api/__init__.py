"""The HTTP layer: translates HTTP requests to domain calls and domain results to Zoom's HTTP shape."""
