"""The border liaison hotline: one alert or incident pushed to a named partner agency, with a reason."""
