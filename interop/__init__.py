"""The standards other tools speak: Cursor-on-Target for TAK clients, Frigate camera events,
signed outbound webhooks."""
