"""The hall clerk's terminal program: sells at the counter, writes tickets to Expo cards, voids, reprints,
totals and closes the day. A client: HTTP to the service, PC/SC to the card, a local journal; no database."""
