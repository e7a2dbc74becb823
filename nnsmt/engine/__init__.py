"""Engines and the one driver: how queries are solved (see `driver`), which engine answers a
verification query best (`verify`), robustness and estimation on a named backend
(`robustness`), trained models written out (`train`), compressed networks written and spot
checked (`compress`), and figures (`plots`). What the commands run: queries built from typed
options (`build`), many instances with resumable result files (`batch`), one query compared
across backends (`diff`), networks written out (`export`) and the commands' JSON records
(`reports`)."""
