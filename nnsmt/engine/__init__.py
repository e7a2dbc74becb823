"""Engines and the one driver: how queries are solved (see `driver`), which engine answers a
verification query best (`verify`), robustness and estimation on a named backend
(`robustness`), trained models written out (`train`), and figures (`plots`)."""
