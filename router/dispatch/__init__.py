"""Dispatch to engine pools: placement policies, breakers, retries, admission, stalls, migration, launched servers."""
