"""The composition root: the aiohttp server, the command line, outbox delivery."""
