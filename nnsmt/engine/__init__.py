"""Engines and the one driver: how queries are solved (see `driver`), and which engine answers
a verification query best (`verify`)."""
